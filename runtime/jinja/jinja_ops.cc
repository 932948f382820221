// Python operators and lookups on template values: arithmetic, attribute and item access, `in`,
// len(), iteration and slicing.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "runtime/jinja/jinja_ast.h"

namespace hubnode::runtime::jinja {

Status Budget::Charge(uint64_t bytes) {
  work_ += bytes;
  if (work_ > opt_.max_work_bytes) {
    return ResourceExhaustedError("template rendering exceeded its work budget of " +
                                  std::to_string(opt_.max_work_bytes) + " bytes");
  }
  return OkStatus();
}

NamespaceData* Budget::NewNamespace() {
  namespaces_.push_back(std::make_unique<NamespaceData>());
  return namespaces_.back().get();
}

int64_t Budget::NowUnixSeconds() {
  auto now = opt_.now ? opt_.now() : std::chrono::system_clock::now();
  return std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
}

Status Budget::Raise(std::string message) {
  raised_ = true;
  return InvalidArgumentError(std::move(message));
}

Status Budget::Tick() {
  if (++steps_ > opt_.max_steps) {
    return ResourceExhaustedError("template rendering exceeded " + std::to_string(opt_.max_steps) +
                                  " steps");
  }
  if (++iterations_ > opt_.max_loop_iterations) {
    return ResourceExhaustedError("template loops exceeded " +
                                  std::to_string(opt_.max_loop_iterations) + " iterations");
  }
  return OkStatus();
}

LoopData* Budget::NewLoop() {
  loops_.push_back(std::make_unique<LoopData>());
  return loops_.back().get();
}

Status UndefinedError(const Value& v) {
  const std::string& hint = v.UndefinedHint();
  return InvalidArgumentError(hint.empty() ? "value is undefined" : hint);
}

const Value* Args::Get(size_t index, std::string_view name) const {
  for (const auto& [key, value] : kw) {
    if (key == name) return &value;
  }
  return index < pos.size() ? &pos[index] : nullptr;
}

Result<Value> MakeString(Env& env, std::string s) {
  if (s.size() > env.max_string()) return ResourceExhaustedError("string too long");
  return Value::String(std::move(s));
}

Result<std::vector<Value>> Iterate(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined:
      return std::vector<Value>{};
    case Kind::kList:
      return v.Items();
    case Kind::kDict: {
      std::vector<Value> keys;
      for (const auto& [k, unused] : v.AsDict().entries()) keys.push_back(k);
      return keys;
    }
    case Kind::kString: {
      std::vector<Value> chars;
      std::vector<size_t> off = CodePointOffsets(v.AsString());
      for (size_t i = 0; i + 1 < off.size(); ++i) {
        chars.push_back(Value::String(v.AsString().substr(off[i], off[i + 1] - off[i])));
      }
      return chars;
    }
    default:
      return InvalidArgumentError("'" + TypeName(v) + "' object is not iterable");
  }
}

Result<bool> Contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Kind::kUndefined:
      return false;
    case Kind::kString:
      if (!item.is_string()) {
        return InvalidArgumentError("'in <string>' requires string as left operand, not " +
                                    TypeName(item));
      }
      return container.AsString().find(item.AsString()) != std::string::npos;
    case Kind::kList:
      for (const Value& v : container.Items()) {
        if (Equals(v, item)) return true;
      }
      return false;
    case Kind::kDict:
      if (item.is_list() || item.is_dict()) {
        return InvalidArgumentError("unhashable type: '" + TypeName(item) + "'");
      }
      return container.AsDict().Find(item) != nullptr;
    default:
      return InvalidArgumentError("argument of type '" + TypeName(container) + "' is not iterable");
  }
}

Result<int64_t> Length(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined:
      return 0;
    case Kind::kString:
      return static_cast<int64_t>(CodePointCount(v.AsString()));
    case Kind::kList:
      return static_cast<int64_t>(v.Items().size());
    case Kind::kDict:
      return static_cast<int64_t>(v.AsDict().size());
    default:
      return InvalidArgumentError("object of type '" + TypeName(v) + "' has no len()");
  }
}

Result<Value> Slice(Env& env, const Value& v, const Value* start, const Value* stop,
                    const Value* step) {
  if (!v.is_list() && !v.is_string()) {
    if (v.is_undefined()) return InvalidArgumentError(v.UndefinedHint());
    return InvalidArgumentError("'" + TypeName(v) + "' object is not subscriptable");
  }
  auto index = [](const Value* b, std::optional<int64_t>& out) -> Status {
    if (b == nullptr || b->is_none()) return OkStatus();
    if (!b->is_integral()) {
      return InvalidArgumentError("slice indices must be integers or None");
    }
    out = b->AsInt();
    return OkStatus();
  };
  std::optional<int64_t> lo, hi, st;
  RETURN_IF_ERROR(index(start, lo));
  RETURN_IF_ERROR(index(stop, hi));
  RETURN_IF_ERROR(index(step, st));
  int64_t s = st.value_or(1);
  if (s == 0) return InvalidArgumentError("slice step cannot be zero");
  std::vector<size_t> off;
  if (v.is_string()) {
    RETURN_IF_ERROR(env.Charge(v.AsString().size()));
    off = CodePointOffsets(v.AsString());
  }
  int64_t len =
      v.is_list() ? static_cast<int64_t>(v.Items().size()) : static_cast<int64_t>(off.size()) - 1;
  auto adjust = [&](std::optional<int64_t> x, int64_t dflt) {
    if (!x) return dflt;
    int64_t i = *x;
    if (i < 0) {
      i += len;
      if (i < 0) i = s < 0 ? -1 : 0;
    } else if (i >= len) {
      i = s < 0 ? len - 1 : len;
    }
    return i;
  };
  int64_t b = adjust(lo, s < 0 ? len - 1 : 0);
  int64_t e = adjust(hi, s < 0 ? -1 : len);
  std::vector<int64_t> picks;
  for (int64_t i = b; s > 0 ? i < e : i > e; i += s) picks.push_back(i);
  if (v.is_list()) {
    std::vector<Value> items;
    items.reserve(picks.size());
    for (int64_t i : picks) items.push_back(v.Items()[i]);
    return Value::List(std::move(items), v.IsTuple());
  }
  std::string out;
  for (int64_t i : picks) out.append(v.AsString(), off[i], off[i + 1] - off[i]);
  return Value::String(std::move(out));
}

Result<Value> Unary(bool negate, const Value& v) {
  if (v.is_undefined()) return UndefinedError(v);
  if (!v.is_number()) {
    return InvalidArgumentError(std::string("bad operand type for unary ") + (negate ? "-" : "+") +
                                ": '" + TypeName(v) + "'");
  }
  if (!negate) return v.is_float() ? v : Value::Int(v.AsInt());
  if (v.is_float()) return Value::Float(-v.AsDouble());
  if (v.AsInt() == INT64_MIN) return InvalidArgumentError("integer overflow");
  return Value::Int(-v.AsInt());
}

Result<bool> CompareOp(Op op, const Value& left, const Value& right) {
  switch (op) {
    case Op::kEq:
      return Equals(left, right);
    case Op::kNe:
      return !Equals(left, right);
    case Op::kIn:
    case Op::kNotIn: {
      ASSIGN_OR_RETURN(bool in, Contains(right, left));
      return in == (op == Op::kIn);
    }
    default: {
      if (left.is_undefined()) return UndefinedError(left);
      if (right.is_undefined()) return UndefinedError(right);
      ASSIGN_OR_RETURN(int c, Compare(left, right));
      return op == Op::kLt ? c < 0 : op == Op::kLe ? c <= 0 : op == Op::kGt ? c > 0 : c >= 0;
    }
  }
}

Result<Value> GetAttr(const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Kind::kUndefined:
      return UndefinedError(obj);
    case Kind::kDict: {
      if (auto m = GetMethod(obj, name)) return *m;
      if (const Value* v = obj.AsDict().FindString(name)) return *v;
      break;
    }
    case Kind::kNamespace:
      if (const Value* v = obj.AsNamespace()->attrs.FindString(name)) return *v;
      break;
    case Kind::kLoop: {
      const LoopData& l = *obj.AsLoop();
      if (name == "index0") return Value::Int(l.index0);
      if (name == "index") return Value::Int(l.index0 + 1);
      if (name == "revindex") return Value::Int(l.length - l.index0);
      if (name == "revindex0") return Value::Int(l.length - l.index0 - 1);
      if (name == "first") return Value::Bool(l.index0 == 0);
      if (name == "last") return Value::Bool(l.index0 + 1 == l.length);
      if (name == "length") return Value::Int(l.length);
      if (name == "depth") return Value::Int(l.depth0 + 1);
      if (name == "depth0") return Value::Int(l.depth0);
      if (name == "previtem") return l.previtem;
      if (name == "nextitem") return l.nextitem;
      if (name == "cycle") {
        auto fn = std::make_shared<Callable>();
        fn->type = Callable::Type::kLoopCycle;
        fn->name = "cycle";
        fn->self = obj;
        return Value::Function(std::move(fn));
      }
      break;
    }
    default:
      if (auto m = GetMethod(obj, name)) return *m;
  }
  return Value::Undefined("'" + TypeName(obj) + " object' has no attribute '" + name + "'");
}

Result<Value> GetItem(Env& env, const Value& obj, const Value& key) {
  if (obj.is_undefined()) return UndefinedError(obj);
  if (obj.is_dict()) {
    if (const Value* v = obj.AsDict().Find(key)) return *v;
  } else if ((obj.is_list() || obj.is_string()) && key.is_integral()) {
    ASSIGN_OR_RETURN(int64_t len, Length(obj));
    int64_t i = key.AsInt();
    if (i < 0) i += len;
    if (i >= 0 && i < len) {
      if (obj.is_list()) return obj.Items()[i];
      Value stop = Value::Int(i + 1);
      Value start = Value::Int(i);
      return Slice(env, obj, &start, &stop, nullptr);
    }
    return Value::Undefined(TypeName(obj) + " object has no element " +
                            std::to_string(key.AsInt()));
  }
  if (key.is_string() && !obj.is_dict()) return GetAttr(obj, key.AsString());
  if (key.is_string()) {
    if (auto m = GetMethod(obj, key.AsString())) return *m;
  }
  ASSIGN_OR_RETURN(std::string k, Repr(key, 256));
  return Value::Undefined("'" + TypeName(obj) + " object' has no attribute " + k);
}

// Python's checked 64-bit arithmetic; overflow is an error rather than a bignum.
Result<Value> Arith(Env& env, Op op, const Value& a, const Value& b) {
  if (a.is_undefined()) return UndefinedError(a);
  if (b.is_undefined()) return UndefinedError(b);
  static constexpr const char* kSymbols[] = {"+", "-", "*", "/", "//", "%", "**"};
  auto type_error = [&]() {
    return InvalidArgumentError(std::string("unsupported operand type(s) for ") +
                                kSymbols[static_cast<int>(op)] + ": '" + TypeName(a) + "' and '" +
                                TypeName(b) + "'");
  };
  auto overflow = []() { return InvalidArgumentError("integer overflow"); };
  if (op == Op::kAdd && a.is_string() && b.is_string()) {
    if (a.AsString().size() + b.AsString().size() > env.max_string()) {
      return ResourceExhaustedError("string too long");
    }
    return Value::String(a.AsString() + b.AsString());
  }
  if (op == Op::kAdd && a.is_list() && b.is_list()) {
    if (a.IsTuple() != b.IsTuple()) return type_error();
    if (a.Items().size() + b.Items().size() > env.max_items()) {
      return ResourceExhaustedError("list too long");
    }
    std::vector<Value> items = a.Items();
    items.insert(items.end(), b.Items().begin(), b.Items().end());
    return Value::List(std::move(items), a.IsTuple());
  }
  if (op == Op::kMul && (a.is_string() || a.is_list()) != (b.is_string() || b.is_list())) {
    const Value& seq = a.is_integral() ? b : a;
    const Value& count = a.is_integral() ? a : b;
    if (!count.is_integral()) return type_error();
    int64_t n = std::max<int64_t>(0, count.AsInt());
    ASSIGN_OR_RETURN(int64_t len, Length(seq));
    size_t unit = seq.is_string() ? seq.AsString().size() : static_cast<size_t>(len);
    size_t limit = seq.is_string() ? env.max_string() : env.max_items();
    if (unit != 0 && static_cast<uint64_t>(n) > limit / unit) {
      return ResourceExhaustedError("repeated sequence too long");
    }
    if (seq.is_string()) {
      std::string s;
      for (int64_t i = 0; i < n; ++i) s += seq.AsString();
      return Value::String(std::move(s));
    }
    std::vector<Value> items;
    for (int64_t i = 0; i < n; ++i)
      items.insert(items.end(), seq.Items().begin(), seq.Items().end());
    return Value::List(std::move(items), seq.IsTuple());
  }
  if (!a.is_number() || !b.is_number()) return type_error();
  if (a.is_integral() && b.is_integral() && op != Op::kDiv) {
    int64_t x = a.AsInt(), y = b.AsInt(), r = 0;
    switch (op) {
      case Op::kAdd:
        if (__builtin_add_overflow(x, y, &r)) return overflow();
        return Value::Int(r);
      case Op::kSub:
        if (__builtin_sub_overflow(x, y, &r)) return overflow();
        return Value::Int(r);
      case Op::kMul:
        if (__builtin_mul_overflow(x, y, &r)) return overflow();
        return Value::Int(r);
      case Op::kFloorDiv:
      case Op::kMod: {
        if (y == 0) return InvalidArgumentError("integer division or modulo by zero");
        if (x == INT64_MIN && y == -1) return overflow();
        int64_t q = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) {
          --q;
          m += y;
        }
        return Value::Int(op == Op::kFloorDiv ? q : m);
      }
      case Op::kPow: {
        if (y < 0) return Value::Float(std::pow(static_cast<double>(x), static_cast<double>(y)));
        int64_t result = 1;
        for (int64_t i = 0; i < y; ++i) {
          if (__builtin_mul_overflow(result, x, &result)) return overflow();
          if (result == 0 || result == 1) break;
          if (result == -1) {
            result = ((y - i - 1) % 2 == 0) ? -1 : 1;
            break;
          }
        }
        return Value::Int(result);
      }
      default:
        break;
    }
  }
  double x = a.AsDouble(), y = b.AsDouble();
  switch (op) {
    case Op::kAdd:
      return Value::Float(x + y);
    case Op::kSub:
      return Value::Float(x - y);
    case Op::kMul:
      return Value::Float(x * y);
    case Op::kDiv:
      if (y == 0) return InvalidArgumentError("division by zero");
      return Value::Float(x / y);
    case Op::kFloorDiv:
      if (y == 0) return InvalidArgumentError("float floor division by zero");
      return Value::Float(std::floor(x / y));
    case Op::kMod: {
      if (y == 0) return InvalidArgumentError("float modulo");
      double m = std::fmod(x, y);
      if (m != 0 && ((m < 0) != (y < 0))) m += y;
      return Value::Float(m);
    }
    case Op::kPow:
      return Value::Float(std::pow(x, y));
    default:
      return type_error();
  }
}

namespace {

double RoundDecimal(double x, int64_t digits) {
  if (!std::isfinite(x)) return x;
  if (digits < 0) {
    double p = std::pow(10.0, static_cast<double>(-digits));
    return std::nearbyint(x / p) * p;
  }
  char buf[512];
  std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(std::min<int64_t>(digits, 300)), x);
  return std::strtod(buf, nullptr);
}

}  // namespace

Result<Value> Round(const Value& v, const Args& args) {
  if (!v.is_number()) return InvalidArgumentError("round: expected a number, got " + TypeName(v));
  const Value* p = args.Get(0, "precision");
  int64_t precision = p != nullptr && p->is_integral() ? p->AsInt() : 0;
  const Value* m = args.Get(1, "method");
  std::string method = m != nullptr && m->is_string() ? m->AsString() : "common";
  if (method != "common" && method != "floor" && method != "ceil") {
    return InvalidArgumentError("method must be common, ceil or floor");
  }
  if (method == "common") {
    if (v.is_integral() && precision >= 0) return Value::Int(v.AsInt());
    return Value::Float(RoundDecimal(v.AsDouble(), precision));
  }
  double scale = std::pow(10.0, static_cast<double>(precision));
  double x = v.AsDouble() * scale;
  return Value::Float((method == "floor" ? std::floor(x) : std::ceil(x)) / scale);
}

// Python int(str): optional sign, digits with single underscores, surrounding whitespace.
std::optional<int64_t> ParseInt(const std::string& text, int base) {
  std::string s;
  for (char c : text) {
    if (c != '_') s += c;
  }
  size_t b = s.find_first_not_of(" \t\n\r\f\v"), e = s.find_last_not_of(" \t\n\r\f\v");
  if (b == std::string::npos) return std::nullopt;
  s = s.substr(b, e - b + 1);
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, base);
  if (errno != 0 || end != s.c_str() + s.size()) return std::nullopt;
  return static_cast<int64_t>(v);
}

std::optional<double> ParseFloat(const std::string& text) {
  size_t b = text.find_first_not_of(" \t\n\r\f\v"), e = text.find_last_not_of(" \t\n\r\f\v");
  if (b == std::string::npos) return std::nullopt;
  std::string s = text.substr(b, e - b + 1);
  if (s.find_first_of("xXpP") != std::string::npos) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

}  // namespace hubnode::runtime::jinja
