// Jinja tests, Python str/dict/list methods, globals and the sequence helpers, with the
// semantics of Python 3 and jinja2 3.1 under transformers' ImmutableSandboxedEnvironment.
//
// Known deviations from Jinja2/Python (none affects the chat templates we have checked):
//  - Integers are 64-bit; overflow is InvalidArgument instead of a bignum.
//  - Case mapping (upper, lower, title, capitalize, is_lower...) and isdigit/isalpha are ASCII;
//    other code points pass through unchanged. Whitespace for strip/split is Python's set.
//  - select/reject/map/selectattr/reverse and dict.items() return lists, so printing one shows
//    a list where Python prints "<generator object ...>"; `|length` of them works here.
//  - No Markup: safe returns its input and autoescape is off (as in transformers), so adding a
//    `safe` string to a plain one does not escape the latter.
//  - Unknown filters and tests are errors when evaluated, not when parsed.
//  - str.format supports {} {0} {name} without format specs; the % operator on strings and the
//    format filter are not supported.
//  - repr() of non-ASCII strings treats only common separators/format characters as
//    non-printable.
#include <algorithm>
#include <cmath>
#include <ctime>

#include "runtime/jinja/jinja_value.h"

namespace hubnode::runtime::jinja {
namespace {

// Jinja2's sandbox refuses larger ranges (jinja2.sandbox.MAX_RANGE).
constexpr int64_t kMaxRange = 100000;

constexpr std::string_view kDictMethods[] = {"items", "keys", "values", "get", "copy"};
constexpr std::string_view kListMethods[] = {"index", "count", "copy"};
constexpr std::string_view kDictMutators[] = {"clear", "pop", "popitem", "setdefault", "update"};
constexpr std::string_view kListMutators[] = {"append", "clear",  "extend",  "insert",
                                              "pop",    "remove", "reverse", "sort"};

template <size_t N>
bool In(const std::string_view (&names)[N], std::string_view name) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

Value Bound(Callable::Type type, std::string_view name, Value self) {
  auto fn = std::make_shared<Callable>();
  fn->type = type;
  fn->name = std::string(name);
  fn->self = std::move(self);
  return Value::Function(std::move(fn));
}

}  // namespace

std::optional<Value> GetMethod(const Value& self, std::string_view name) {
  bool found = (self.is_string() && IsStringMethod(name)) ||
               (self.is_dict() && In(kDictMethods, name)) ||
               (self.is_list() && In(kListMethods, name));
  if (found) return Bound(Callable::Type::kMethod, name, self);
  if ((self.is_dict() && In(kDictMutators, name)) || (self.is_list() && In(kListMutators, name))) {
    return Value::Undefined("access to attribute '" + std::string(name) + "' of '" +
                            TypeName(self) + "' object is unsafe.");
  }
  return std::nullopt;
}

Result<Value> CallMethod(Env& env, const Value& self, std::string_view name, const Args& args) {
  if (self.is_string()) return CallStringMethod(env, self.AsString(), name, args);
  if (self.is_dict()) {
    const DictData& d = self.AsDict();
    RETURN_IF_ERROR(env.Charge(48 * d.size()));
    if (name == "get") {
      const Value* key = args.Get(0, "key");
      if (key == nullptr) return InvalidArgumentError("get expected at least 1 argument");
      if (const Value* v = d.Find(*key)) return *v;
      const Value* dflt = args.Get(1, "default");
      return dflt != nullptr ? *dflt : Value::None();
    }
    if (name == "copy") return self;
    std::vector<Value> out;
    for (const auto& [k, v] : d.entries()) {
      if (name == "keys") {
        out.push_back(k);
      } else if (name == "values") {
        out.push_back(v);
      } else {
        ASSIGN_OR_RETURN(Value pair, Value::List({k, v}, true));
        out.push_back(std::move(pair));
      }
    }
    return Value::List(std::move(out));
  }
  if (self.is_list()) {
    if (name == "copy") return self;
    const Value* x = args.Get(0, "value");
    if (x == nullptr) return InvalidArgumentError(std::string(name) + "() takes 1 argument");
    int64_t count = 0;
    for (size_t i = 0; i < self.Items().size(); ++i) {
      if (!Equals(self.Items()[i], *x)) continue;
      if (name == "index") return Value::Int(static_cast<int64_t>(i));
      ++count;
    }
    if (name == "index") return InvalidArgumentError("value is not in list");
    return Value::Int(count);
  }
  return InvalidArgumentError("'" + TypeName(self) + "' object has no method '" +
                              std::string(name) + "'");
}

std::optional<Value> GetGlobal(std::string_view name) {
  static constexpr std::string_view kGlobals[] = {"range", "namespace", "dict", "raise_exception",
                                                  "strftime_now"};
  if (!In(kGlobals, name)) return std::nullopt;
  return Bound(Callable::Type::kGlobal, name, Value());
}

Result<Value> CallGlobal(Env& env, std::string_view name, const Args& args) {
  if (name == "raise_exception") {
    const Value* msg = args.Get(0, "message");
    std::string text;
    if (msg != nullptr) {
      ASSIGN_OR_RETURN(text, ToStr(*msg, 64 * 1024));
    }
    return env.Raise(std::move(text));
  }
  if (name == "range") {
    if (args.pos.empty() || args.pos.size() > 3) {
      return InvalidArgumentError("range expected 1 to 3 arguments");
    }
    for (const Value& a : args.pos) {
      if (!a.is_integral()) {
        return InvalidArgumentError("'" + TypeName(a) +
                                    "' object cannot be interpreted as an "
                                    "integer");
      }
    }
    int64_t start = args.pos.size() > 1 ? args.pos[0].AsInt() : 0;
    int64_t stop = args.pos.size() > 1 ? args.pos[1].AsInt() : args.pos[0].AsInt();
    int64_t step = args.pos.size() > 2 ? args.pos[2].AsInt() : 1;
    if (step == 0) return InvalidArgumentError("range() arg 3 must not be zero");
    // Python: ceil((stop - start) / step) items, computed without overflow.
    long double span = static_cast<long double>(stop) - start;
    long double count = std::ceil(span / step);
    if (count > kMaxRange) {
      return ResourceExhaustedError(
          "Range too big. The sandbox blocks ranges larger than "
          "MAX_RANGE (100000).");
    }
    std::vector<Value> items;
    for (int64_t i = 0; i < static_cast<int64_t>(count); ++i)
      items.push_back(Value::Int(start + i * step));
    RETURN_IF_ERROR(env.Charge(16 * items.size()));
    return Value::List(std::move(items));
  }
  if (name == "namespace" || name == "dict") {
    DictData d;
    if (!args.pos.empty()) {
      if (args.pos.size() > 1 || !args.pos[0].is_dict()) {
        return InvalidArgumentError(std::string(name) + "(): expected a single mapping argument");
      }
      for (const auto& [k, v] : args.pos[0].AsDict().entries()) d.Set(k, v);
    }
    for (const auto& [k, v] : args.kw) d.Set(Value::String(k), v);
    if (name == "dict") return Value::Dict(std::move(d));
    NamespaceData* ns = env.NewNamespace();
    ns->attrs = std::move(d);
    return Value::Namespace(ns);
  }
  if (name == "strftime_now") {
    const Value* fmt_arg = args.Get(0, "format");
    if (fmt_arg == nullptr || !fmt_arg->is_string()) {
      return InvalidArgumentError("strftime_now(): format must be a str");
    }
    const std::string& fmt = fmt_arg->AsString();
    if (fmt.size() > 256 || fmt.find('\0') != std::string::npos) {
      return InvalidArgumentError("strftime_now(): format must be under 256 bytes without NUL");
    }
    time_t t = static_cast<time_t>(env.NowUnixSeconds());
    struct tm tm_local;
    if (localtime_r(&t, &tm_local) == nullptr) return InvalidArgumentError("time out of range");
    // strftime cannot report "buffer too small" apart from "empty result"; 64 bytes per
    // format byte fits every conversion.
    std::string buf(fmt.size() * 64 + 1, '\0');
    size_t n = fmt.empty() ? 0 : std::strftime(buf.data(), buf.size(), fmt.c_str(), &tm_local);
    buf.resize(n);
    return Value::String(std::move(buf));
  }
  return InvalidArgumentError("'" + std::string(name) + "' is not callable");
}

Result<bool> ApplyTest(Env& env, std::string_view name, const Value& v, const Args& args) {
  const Value* arg = args.Get(0, "other");
  auto need_arg = [&]() {
    return InvalidArgumentError("test '" + std::string(name) + "' needs an argument");
  };
  Kind k = v.kind();
  if (name == "defined") return k != Kind::kUndefined;
  if (name == "undefined") return k == Kind::kUndefined;
  if (name == "none") return k == Kind::kNone;
  if (name == "string") return k == Kind::kString;
  if (name == "number") return v.is_number();
  if (name == "integer") return k == Kind::kInt;
  if (name == "float") return k == Kind::kFloat;
  if (name == "boolean") return k == Kind::kBool;
  if (name == "true") return k == Kind::kBool && v.AsBool();
  if (name == "false") return k == Kind::kBool && !v.AsBool();
  if (name == "mapping") return k == Kind::kDict;
  if (name == "iterable" || name == "sequence") {
    return k == Kind::kUndefined || k == Kind::kString || k == Kind::kList || k == Kind::kDict;
  }
  if (name == "callable") return k == Kind::kCallable;
  if (name == "escaped") return false;
  if (name == "lower" || name == "upper") {
    if (!v.is_string()) return false;
    Args none;
    ASSIGN_OR_RETURN(Value r, CallStringMethod(env, v.AsString(),
                                               name == "lower" ? "islower" : "isupper", none));
    return r.AsBool();
  }
  if (name == "odd" || name == "even" || name == "divisibleby") {
    int64_t d = 2;
    if (name == "divisibleby") {
      if (arg == nullptr || !arg->is_number()) return need_arg();
      if (!arg->is_integral() || !v.is_integral()) {
        double x = v.is_number() ? v.AsDouble() : 0, y = arg->AsDouble();
        if (!v.is_number()) return InvalidArgumentError("unsupported operand type for %");
        if (y == 0) return InvalidArgumentError("float modulo");
        return std::fmod(x, y) == 0;
      }
      d = arg->AsInt();
      if (d == 0) return InvalidArgumentError("integer division or modulo by zero");
      return v.AsInt() % d == 0;
    }
    if (!v.is_number()) return InvalidArgumentError("unsupported operand type(s) for %");
    double m = v.is_integral() ? static_cast<double>(((v.AsInt() % 2) + 2) % 2)
                               : std::fmod(std::fmod(v.AsDouble(), 2) + 2, 2);
    return name == "odd" ? m == 1 : m == 0;
  }
  if (name == "equalto" || name == "eq" || name == "==" || name == "sameas") {
    if (arg == nullptr) return need_arg();
    if (name == "sameas" && (v.kind() != arg->kind())) return false;
    return Equals(v, *arg);
  }
  if (name == "ne" || name == "!=") {
    if (arg == nullptr) return need_arg();
    return !Equals(v, *arg);
  }
  if (name == "lt" || name == "<" || name == "le" || name == "<=" || name == "gt" || name == ">" ||
      name == "ge" || name == ">=" || name == "lessthan" || name == "greaterthan") {
    if (arg == nullptr) return need_arg();
    if (v.is_undefined()) return InvalidArgumentError(v.UndefinedHint());
    ASSIGN_OR_RETURN(int c, Compare(v, *arg));
    if (name == "lt" || name == "<" || name == "lessthan") return c < 0;
    if (name == "le" || name == "<=") return c <= 0;
    if (name == "gt" || name == ">" || name == "greaterthan") return c > 0;
    return c >= 0;
  }
  if (name == "in") {
    if (arg == nullptr) return need_arg();
    return Contains(*arg, v);
  }
  return InvalidArgumentError("No test named '" + std::string(name) + "'.");
}

}  // namespace hubnode::runtime::jinja
