// Jinja filters, after jinja2/filters.py (3.1). tojson is transformers' override (jinja_json.cc);
// round, int and float share number parsing with the evaluator (jinja_ops.cc).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "runtime/jinja/jinja_value.h"

namespace hubnode::runtime::jinja {
namespace {

Result<Value> StringValue(Env& env, const Value& v) {
  ASSIGN_OR_RETURN(std::string s, ToStr(v, env.max_string()));
  RETURN_IF_ERROR(env.Charge(s.size()));
  return Value::String(std::move(s));
}

bool Flag(const Args& args, size_t index, std::string_view name, bool dflt) {
  const Value* v = args.Get(index, name);
  return v == nullptr ? dflt : Truthy(*v);
}

// Jinja's attribute paths ("a.b", "items.0"): item lookup first, then attribute.
Result<Value> GetPath(const Value& item, const std::string& path) {
  Value cur = item;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (cur.is_undefined()) return InvalidArgumentError(cur.UndefinedHint());
    bool digits =
        !part.empty() && part.size() < 18 &&
        std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    Value next = Value::Undefined("'" + TypeName(cur) + " object' has no attribute '" + part + "'");
    if (cur.is_dict()) {
      const Value* v =
          digits ? cur.AsDict().Find(Value::Int(std::stoll(part))) : cur.AsDict().FindString(part);
      if (v != nullptr) next = *v;
    } else if (cur.is_list() && digits) {
      size_t i = std::stoull(part);
      if (i < cur.Items().size()) next = cur.Items()[i];
    } else if (cur.kind() == Kind::kNamespace) {
      if (const Value* v = cur.AsNamespace()->attrs.FindString(part)) next = *v;
    }
    cur = std::move(next);
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

// The sort key Jinja uses: strings lower-cased unless case_sensitive.
Value SortKey(const Value& v, bool case_sensitive) {
  if (case_sensitive || !v.is_string()) return v;
  std::string s = v.AsString();
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return Value::String(std::move(s));
}

// Keys for items (by attribute path when given), sorted stably; Python's TypeError on
// incomparable keys.
Result<std::vector<size_t>> SortedOrder(const std::vector<Value>& items, const Value* attribute,
                                        bool case_sensitive, bool reverse) {
  std::vector<Value> keys;
  for (const Value& item : items) {
    Value key = item;
    if (attribute != nullptr && attribute->is_string()) {
      ASSIGN_OR_RETURN(key, GetPath(item, attribute->AsString()));
    }
    keys.push_back(SortKey(key, case_sensitive));
  }
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  Status error;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    auto c = Compare(keys[a], keys[b]);
    if (!c.ok()) {
      if (error.ok()) error = c.status();
      return false;
    }
    return reverse ? *c > 0 : *c < 0;
  });
  if (!error.ok()) return error;
  return order;
}

std::vector<std::string> SplitLines(const std::string& s) {
  std::vector<std::string> lines;
  size_t start = 0, i = 0;
  while (i < s.size()) {
    unsigned char c = s[i];
    size_t width = 0;
    if (c == '\n' || c == '\v' || c == '\f' || c == 0x1C || c == 0x1D || c == 0x1E) {
      width = 1;
    } else if (c == '\r') {
      width = i + 1 < s.size() && s[i + 1] == '\n' ? 2 : 1;
    } else if (s.compare(i, 2, "\xC2\x85") == 0) {
      width = 2;
    } else if (s.compare(i, 3, "\xE2\x80\xA8") == 0 || s.compare(i, 3, "\xE2\x80\xA9") == 0) {
      width = 3;
    }
    if (width == 0) {
      ++i;
      continue;
    }
    lines.push_back(s.substr(start, i - start));
    i += width;
    start = i;
  }
  if (start < s.size()) lines.push_back(s.substr(start));
  return lines;
}

Result<Value> Indent(Env& env, const Value& v, const Args& args) {
  ASSIGN_OR_RETURN(std::string s, ToStr(v, env.max_string()));
  const Value* width = args.Get(0, "width");
  std::string pad(4, ' ');
  if (width != nullptr && width->is_string()) {
    pad = width->AsString();
  } else if (width != nullptr && width->is_integral()) {
    pad = std::string(static_cast<size_t>(std::clamp<int64_t>(width->AsInt(), 0, 1024)), ' ');
  }
  bool first = Flag(args, 1, "first", false), blank = Flag(args, 2, "blank", false);
  std::vector<std::string> lines = SplitLines(s + "\n");
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out += '\n';
    if ((i > 0 || first) && (blank || !lines[i].empty())) out += pad;
    out += lines[i];
    if (out.size() > env.max_string()) return ResourceExhaustedError("string too long");
  }
  return Value::String(std::move(out));
}

Result<Value> Replace(Env& env, const Value& v, const Args& args) {
  ASSIGN_OR_RETURN(std::string s, ToStr(v, env.max_string()));
  const Value* old_v = args.Get(0, "old");
  const Value* new_v = args.Get(1, "new");
  if (old_v == nullptr || new_v == nullptr)
    return InvalidArgumentError("replace needs old and new");
  ASSIGN_OR_RETURN(std::string from, ToStr(*old_v, env.max_string()));
  ASSIGN_OR_RETURN(std::string to, ToStr(*new_v, env.max_string()));
  const Value* count_v = args.Get(2, "count");
  int64_t count = count_v != nullptr && count_v->is_integral() ? count_v->AsInt() : -1;
  std::string out;
  int64_t done = 0;
  auto room = [&]() { return count < 0 || done < count; };
  if (from.empty()) {
    std::vector<size_t> off = CodePointOffsets(s);
    for (size_t i = 0; i + 1 < off.size(); ++i) {
      if (room()) {
        out += to;
        ++done;
      }
      out.append(s, off[i], off[i + 1] - off[i]);
      if (out.size() > env.max_string()) return ResourceExhaustedError("string too long");
    }
    if (room()) out += to;
  } else {
    size_t start = 0;
    for (size_t at = s.find(from); at != std::string::npos && room(); at = s.find(from, start)) {
      out.append(s, start, at - start);
      out += to;
      ++done;
      start = at + from.size();
      if (out.size() > env.max_string()) return ResourceExhaustedError("string too long");
    }
    out.append(s, start, std::string::npos);
  }
  return MakeString(env, std::move(out));
}

Result<Value> Aggregate(std::string_view name, const std::vector<Value>& items, const Args& args) {
  if (name == "sum") {
    const Value* attribute = args.Get(0, "attribute");
    const Value* start = args.Get(1, "start");
    Value total = start != nullptr ? *start : Value::Int(0);
    for (const Value& item : items) {
      Value x = item;
      if (attribute != nullptr && attribute->is_string()) {
        ASSIGN_OR_RETURN(x, GetPath(item, attribute->AsString()));
      }
      if (!x.is_number() || !total.is_number()) {
        return InvalidArgumentError("unsupported operand type(s) for +: '" + TypeName(total) +
                                    "' and '" + TypeName(x) + "'");
      }
      if (x.is_integral() && total.is_integral()) {
        int64_t r;
        if (__builtin_add_overflow(total.AsInt(), x.AsInt(), &r)) {
          return InvalidArgumentError("integer overflow");
        }
        total = Value::Int(r);
      } else {
        total = Value::Float(total.AsDouble() + x.AsDouble());
      }
    }
    return total;
  }
  // min / max: the first of the smallest or largest, as Python's min() and max() return.
  ASSIGN_OR_RETURN(std::vector<size_t> order,
                   SortedOrder(items, args.Get(1, "attribute"),
                               Flag(args, 0, "case_sensitive", false), name == "max"));
  if (order.empty()) return Value::Undefined("No aggregated item, sequence was empty.");
  return items[order.front()];
}

}  // namespace

Result<Value> ApplyFilter(Env& env, std::string_view name, const Value& v, const Args& args) {
  if (name == "tojson") return ToJsonFilter(env, v, args);
  if (name == "string" || name == "safe") return StringValue(env, v);
  if (name == "trim") {
    ASSIGN_OR_RETURN(std::string s, ToStr(v, env.max_string()));
    Args a;
    if (const Value* chars = args.Get(0, "chars")) a.pos.push_back(*chars);
    return CallMethod(env, Value::String(std::move(s)), "strip", a);
  }
  if (name == "upper" || name == "lower" || name == "capitalize") {
    ASSIGN_OR_RETURN(std::string s, ToStr(v, env.max_string()));
    return CallMethod(env, Value::String(std::move(s)), name, Args());
  }
  if (name == "title") {  // Jinja's own: words start after runs of [-\s({[<].
    ASSIGN_OR_RETURN(std::string s, ToStr(v, env.max_string()));
    bool start = true;
    for (char& c : s) {
      bool sep = c == '-' || c == ' ' || (c >= '\t' && c <= '\r') || c == '(' || c == '{' ||
                 c == '[' || c == '<';
      if (sep) {
        start = true;
        continue;
      }
      c = start ? (c >= 'a' && c <= 'z' ? c - 32 : c) : (c >= 'A' && c <= 'Z' ? c + 32 : c);
      start = false;
    }
    return Value::String(std::move(s));
  }
  if (name == "length" || name == "count") {
    ASSIGN_OR_RETURN(int64_t n, Length(v));
    return Value::Int(n);
  }
  if (name == "default" || name == "d") {
    const Value* dflt = args.Get(0, "default_value");
    bool boolean = Flag(args, 1, "boolean", false);
    if (v.is_undefined() || (boolean && !Truthy(v))) {
      return dflt != nullptr ? *dflt : Value::String("");
    }
    return v;
  }
  if (name == "escape" || name == "e" || name == "forceescape") {
    ASSIGN_OR_RETURN(std::string s, ToStr(v, env.max_string()));
    std::string out;
    for (char c : s) {
      switch (c) {
        case '&':
          out += "&amp;";
          break;
        case '<':
          out += "&lt;";
          break;
        case '>':
          out += "&gt;";
          break;
        case '"':
          out += "&#34;";
          break;
        case '\'':
          out += "&#39;";
          break;
        default:
          out += c;
      }
    }
    return MakeString(env, std::move(out));
  }
  if (name == "replace") return Replace(env, v, args);
  if (name == "indent") return Indent(env, v, args);
  if (name == "__splitlines") {
    ASSIGN_OR_RETURN(std::string s, ToStr(v, env.max_string()));
    std::vector<Value> items;
    for (auto& line : SplitLines(s)) items.push_back(Value::String(std::move(line)));
    return Value::List(std::move(items));
  }
  if (name == "int") {
    const Value* dflt = args.Get(0, "default");
    const Value* base_v = args.Get(1, "base");
    int base = base_v != nullptr && base_v->is_integral() ? static_cast<int>(base_v->AsInt()) : 10;
    if (v.is_integral()) return Value::Int(v.AsInt());
    if (v.is_float() && std::isfinite(v.AsDouble()) && std::fabs(v.AsDouble()) < 9.2e18) {
      return Value::Int(static_cast<int64_t>(v.AsDouble()));
    }
    if (v.is_string()) {
      if (base >= 2 && base <= 36) {
        if (auto i = ParseInt(v.AsString(), base)) return Value::Int(*i);
      }
      auto f = ParseFloat(v.AsString());
      if (f && std::isfinite(*f) && std::fabs(*f) < 9.2e18)
        return Value::Int(static_cast<int64_t>(*f));
    }
    return dflt != nullptr ? *dflt : Value::Int(0);
  }
  if (name == "float") {
    const Value* dflt = args.Get(0, "default");
    if (v.is_number()) return Value::Float(v.AsDouble());
    if (v.is_string()) {
      if (auto f = ParseFloat(v.AsString())) return Value::Float(*f);
    }
    return dflt != nullptr ? *dflt : Value::Float(0.0);
  }
  if (name == "abs") {
    if (!v.is_number())
      return InvalidArgumentError("bad operand type for abs(): '" + TypeName(v) + "'");
    if (v.is_float()) return Value::Float(std::fabs(v.AsDouble()));
    if (v.AsInt() == INT64_MIN) return InvalidArgumentError("integer overflow");
    return Value::Int(std::llabs(v.AsInt()));
  }
  if (name == "round") return Round(v, args);
  if (name == "attr") {
    const Value* attr = args.Get(0, "name");
    if (attr == nullptr || !attr->is_string()) return InvalidArgumentError("attr needs a name");
    if (auto m = GetMethod(v, attr->AsString())) return *m;
    if (v.kind() == Kind::kNamespace) {
      if (const Value* x = v.AsNamespace()->attrs.FindString(attr->AsString())) return *x;
    }
    return Value::Undefined("'" + TypeName(v) + " object' has no attribute '" + attr->AsString() +
                            "'");
  }
  if (name == "items") {
    if (v.is_undefined()) return Value::List({});
    if (!v.is_dict()) return InvalidArgumentError("Can only get item pairs from a mapping.");
    return CallMethod(env, v, "items", Args());
  }
  if (name == "dictsort") {
    if (!v.is_dict()) return InvalidArgumentError("You can only sort by either 'key' or 'value'");
    ASSIGN_OR_RETURN(Value pairs, CallMethod(env, v, "items", Args()));
    const Value* by = args.Get(1, "by");
    std::string by_s = by != nullptr && by->is_string() ? by->AsString() : "key";
    if (by_s != "key" && by_s != "value") {
      return InvalidArgumentError("You can only sort by either 'key' or 'value'");
    }
    Value path = Value::String(by_s == "key" ? "0" : "1");
    ASSIGN_OR_RETURN(std::vector<size_t> order,
                     SortedOrder(pairs.Items(), &path, Flag(args, 0, "case_sensitive", false),
                                 Flag(args, 2, "reverse", false)));
    std::vector<Value> out;
    for (size_t i : order) out.push_back(pairs.Items()[i]);
    return Value::List(std::move(out));
  }
  // The rest iterate their input.
  ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
  RETURN_IF_ERROR(env.Charge(16 * items.size()));
  if (name == "list") return Value::List(std::move(items));
  if (name == "first" || name == "last") {
    if (items.empty())
      return Value::Undefined("No " + std::string(name) + " item, sequence was empty.");
    return name == "first" ? items.front() : items.back();
  }
  if (name == "reverse") {
    if (v.is_string()) {
      std::string out;
      for (auto it = items.rbegin(); it != items.rend(); ++it) out += it->AsString();
      return Value::String(std::move(out));
    }
    std::reverse(items.begin(), items.end());
    return Value::List(std::move(items));
  }
  if (name == "join") {
    const Value* sep = args.Get(0, "d");
    const Value* attribute = args.Get(1, "attribute");
    std::string d;
    if (sep != nullptr) {
      ASSIGN_OR_RETURN(d, ToStr(*sep, env.max_string()));
    }
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      Value item = items[i];
      if (attribute != nullptr && attribute->is_string()) {
        ASSIGN_OR_RETURN(item, GetPath(item, attribute->AsString()));
      }
      ASSIGN_OR_RETURN(std::string s, ToStr(item, env.max_string()));
      if (i > 0) out += d;
      out += s;
      if (out.size() > env.max_string()) return ResourceExhaustedError("string too long");
    }
    return Value::String(std::move(out));
  }
  if (name == "map") {
    std::vector<Value> out;
    const Value* attribute = args.Get(99, "attribute");
    if (attribute == nullptr && (args.pos.empty() || !args.pos[0].is_string())) {
      return InvalidArgumentError("map requires a filter argument");
    }
    Args rest;
    if (attribute == nullptr) rest.pos.assign(args.pos.begin() + 1, args.pos.end());
    if (attribute == nullptr) rest.kw = args.kw;
    for (const Value& item : items) {
      if (attribute != nullptr) {
        if (!attribute->is_string()) return InvalidArgumentError("map: attribute must be a str");
        ASSIGN_OR_RETURN(Value x, GetPath(item, attribute->AsString()));
        const Value* dflt = args.Get(99, "default");
        out.push_back(x.is_undefined() && dflt != nullptr ? *dflt : x);
      } else {
        ASSIGN_OR_RETURN(Value x, ApplyFilter(env, args.pos[0].AsString(), item, rest));
        out.push_back(std::move(x));
      }
    }
    return Value::List(std::move(out));
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    bool by_attr = name.size() > 6;
    bool want = name[0] == 's';
    size_t test_at = by_attr ? 1 : 0;
    if (by_attr && (args.pos.empty() || !args.pos[0].is_string())) {
      return InvalidArgumentError(std::string(name) + " requires an attribute name");
    }
    Args test_args;
    if (args.pos.size() > test_at + 1) {
      test_args.pos.assign(args.pos.begin() + test_at + 1, args.pos.end());
    }
    test_args.kw = args.kw;
    std::vector<Value> out;
    for (const Value& item : items) {
      Value x = item;
      if (by_attr) {
        ASSIGN_OR_RETURN(x, GetPath(item, args.pos[0].AsString()));
      }
      bool pass;
      if (args.pos.size() > test_at) {
        if (!args.pos[test_at].is_string()) return InvalidArgumentError("test name must be a str");
        ASSIGN_OR_RETURN(pass, ApplyTest(env, args.pos[test_at].AsString(), x, test_args));
      } else {
        pass = Truthy(x);
      }
      if (pass == want) out.push_back(item);
    }
    return Value::List(std::move(out));
  }
  if (name == "sort" || name == "unique") {
    bool is_sort = name == "sort";
    const Value* attribute = args.Get(is_sort ? 2 : 1, "attribute");
    bool case_sensitive = Flag(args, is_sort ? 1 : 0, "case_sensitive", false);
    if (!is_sort) {
      std::vector<Value> seen, out;
      for (const Value& item : items) {
        Value key = item;
        if (attribute != nullptr && attribute->is_string()) {
          ASSIGN_OR_RETURN(key, GetPath(item, attribute->AsString()));
        }
        key = SortKey(key, case_sensitive);
        bool dup =
            std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return Equals(s, key); });
        if (dup) continue;
        RETURN_IF_ERROR(env.Charge(16 * seen.size()));
        seen.push_back(std::move(key));
        out.push_back(item);
      }
      return Value::List(std::move(out));
    }
    ASSIGN_OR_RETURN(std::vector<size_t> order, SortedOrder(items, attribute, case_sensitive,
                                                            Flag(args, 0, "reverse", false)));
    std::vector<Value> out;
    for (size_t i : order) out.push_back(items[i]);
    return Value::List(std::move(out));
  }
  if (name == "sum" || name == "min" || name == "max") return Aggregate(name, items, args);
  if (name == "batch") {
    const Value* count = args.Get(0, "linecount");
    if (count == nullptr || !count->is_integral() || count->AsInt() <= 0) {
      return InvalidArgumentError("batch needs a positive linecount");
    }
    const Value* fill = args.Get(1, "fill_with");
    size_t n = static_cast<size_t>(std::min<int64_t>(count->AsInt(), 1 << 20));
    std::vector<Value> out, row;
    for (size_t i = 0; i < items.size(); ++i) {
      row.push_back(items[i]);
      if (row.size() == n || i + 1 == items.size()) {
        while (fill != nullptr && !fill->is_none() && row.size() < n) row.push_back(*fill);
        ASSIGN_OR_RETURN(Value r, Value::List(std::move(row)));
        out.push_back(std::move(r));
        row.clear();
      }
    }
    return Value::List(std::move(out));
  }
  return InvalidArgumentError("No filter named '" + std::string(name) + "'.");
}

}  // namespace hubnode::runtime::jinja
