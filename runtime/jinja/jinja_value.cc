// Python semantics of Jinja values: str(), repr(), json.dumps(), ==, < and truthiness.
#include "runtime/jinja/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace hubnode::runtime::jinja {

struct Value::ListRep {
  std::vector<Value> items;
  bool is_tuple = false;
  int depth = 1;
};

namespace {

// The hash key under which Python would find `key`: equal numbers share one key. nullopt when
// the value is unhashable.
std::optional<std::string> KeyOf(const Value& key) {
  switch (key.kind()) {
    case Kind::kString:
      return "s" + key.AsString();
    case Kind::kBool:
    case Kind::kInt:
      return "i" + std::to_string(key.AsInt());
    case Kind::kFloat: {
      double d = key.AsDouble();
      if (std::trunc(d) == d && std::fabs(d) < 9e18) {
        return "i" + std::to_string(static_cast<int64_t>(d));
      }
      return "f" + FormatFloat(d);
    }
    case Kind::kNone:
      return std::string("n");
    default:
      return std::nullopt;
  }
}

// Whether Python's str.isprintable() would be false for a non-ASCII code point. An approximation
// of the Unicode tables covering the separators and format characters seen in practice.
bool NonPrintable(uint32_t cp) {
  return (cp >= 0x80 && cp <= 0xA0) || cp == 0xAD || (cp >= 0x600 && cp <= 0x605) || cp == 0x61C ||
         cp == 0x6DD || cp == 0x70F || cp == 0x1680 || cp == 0x180E ||
         (cp >= 0x2000 && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202F) ||
         (cp >= 0x205F && cp <= 0x206F) || cp == 0x3000 || (cp >= 0xD800 && cp <= 0xF8FF) ||
         cp == 0xFEFF || (cp >= 0xFFF9 && cp <= 0xFFFB) || (cp >= 0xFFFE && cp <= 0xFFFF);
}

char Hex(int v) { return "0123456789abcdef"[v & 15]; }

void AppendPyStringRepr(std::string_view s, std::string& out) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  char quote = has_single && !has_double ? '"' : '\'';
  out += quote;
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    uint32_t cp = DecodeAt(s, i);
    if (cp == '\\' || cp == static_cast<uint32_t>(quote)) {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0x100 && NonPrintable(cp))) {
      out += "\\x";
      out += Hex(cp >> 4);
      out += Hex(cp);
    } else if (cp >= 0x100 && NonPrintable(cp)) {
      out += "\\u";
      for (int shift = 12; shift >= 0; shift -= 4) out += Hex(cp >> shift);
    } else {
      out.append(s.substr(start, i - start));
    }
  }
  out += quote;
}

Status TooLarge(size_t limit) {
  return ResourceExhaustedError("rendered value exceeds " + std::to_string(limit) + " bytes");
}

// repr/str of containers, with a depth bound: namespaces can be cyclic.
Status AppendRepr(const Value& v, size_t limit, int depth, std::string& out);

Status AppendStr(const Value& v, size_t limit, int depth, std::string& out) {
  switch (v.kind()) {
    case Kind::kUndefined:
      return OkStatus();
    case Kind::kString:
      out += v.AsString();
      break;
    default:
      return AppendRepr(v, limit, depth, out);
  }
  return out.size() > limit ? TooLarge(limit) : OkStatus();
}

Status AppendRepr(const Value& v, size_t limit, int depth, std::string& out) {
  if (out.size() > limit) return TooLarge(limit);
  if (depth > 2 * kMaxValueDepth) {
    out += "...";
    return OkStatus();
  }
  switch (v.kind()) {
    case Kind::kUndefined:
      out += "Undefined";
      break;
    case Kind::kNone:
      out += "None";
      break;
    case Kind::kBool:
      out += v.AsBool() ? "True" : "False";
      break;
    case Kind::kInt:
      out += std::to_string(v.AsInt());
      break;
    case Kind::kFloat:
      out += FormatFloat(v.AsDouble());
      break;
    case Kind::kString:
      AppendPyStringRepr(v.AsString(), out);
      break;
    case Kind::kList: {
      out += v.IsTuple() ? '(' : '[';
      const auto& items = v.Items();
      for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += ", ";
        RETURN_IF_ERROR(AppendRepr(items[i], limit, depth + 1, out));
      }
      if (v.IsTuple() && items.size() == 1) out += ',';
      out += v.IsTuple() ? ')' : ']';
      break;
    }
    case Kind::kDict:
    case Kind::kNamespace: {
      const DictData& d = v.is_dict() ? v.AsDict() : v.AsNamespace()->attrs;
      if (!v.is_dict()) out += "<Namespace ";
      out += '{';
      bool first = true;
      for (const auto& [key, value] : d.entries()) {
        if (!first) out += ", ";
        first = false;
        RETURN_IF_ERROR(AppendRepr(key, limit, depth + 1, out));
        out += ": ";
        RETURN_IF_ERROR(AppendRepr(value, limit, depth + 1, out));
      }
      out += '}';
      if (!v.is_dict()) out += '>';
      break;
    }
    case Kind::kCallable:
      out += "<function " + v.AsCallable().name + ">";
      break;
    case Kind::kLoop:
      out += "<LoopContext " + std::to_string(v.AsLoop()->index0 + 1) + "/" +
             std::to_string(v.AsLoop()->length) + ">";
      break;
  }
  return out.size() > limit ? TooLarge(limit) : OkStatus();
}

}  // namespace

const Value* DictData::Find(const Value& key) const {
  std::optional<std::string> k = KeyOf(key);
  if (!k) return nullptr;
  auto it = index_.find(*k);
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

const Value* DictData::FindString(std::string_view key) const {
  auto it = index_.find("s" + std::string(key));
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

bool DictData::Set(Value key, Value value) {
  std::optional<std::string> k = KeyOf(key);
  if (!k) return false;
  auto [it, inserted] = index_.emplace(std::move(*k), entries_.size());
  if (inserted) {
    entries_.emplace_back(std::move(key), std::move(value));
  } else {
    entries_[it->second].second = std::move(value);
  }
  return true;
}

Value Value::Undefined(std::string hint) {
  return Value(Rep(UndefinedTag{std::make_shared<const std::string>(std::move(hint))}));
}

Value Value::String(std::string s) {
  return Value(Rep(std::make_shared<const std::string>(std::move(s))));
}

Result<Value> Value::List(std::vector<Value> items, bool is_tuple) {
  int depth = 0;
  for (const Value& v : items) depth = std::max(depth, v.Depth());
  if (depth + 1 > kMaxValueDepth) return ResourceExhaustedError("value nests too deeply");
  auto rep = std::make_shared<ListRep>();
  rep->items = std::move(items);
  rep->is_tuple = is_tuple;
  rep->depth = depth + 1;
  return Value(Rep(ListPtr(std::move(rep))));
}

Result<Value> Value::Dict(DictData dict) {
  int depth = 0;
  for (const auto& [k, v] : dict.entries()) depth = std::max(depth, v.Depth());
  if (depth + 1 > kMaxValueDepth) return ResourceExhaustedError("value nests too deeply");
  dict.depth_ = depth + 1;
  return Value(Rep(std::make_shared<const DictData>(std::move(dict))));
}

int64_t Value::AsInt() const {
  return kind() == Kind::kBool ? (AsBool() ? 1 : 0) : std::get<int64_t>(v_);
}

double Value::AsDouble() const {
  return is_float() ? std::get<double>(v_) : static_cast<double>(AsInt());
}

const std::vector<Value>& Value::Items() const { return std::get<ListPtr>(v_)->items; }
bool Value::IsTuple() const { return is_list() && std::get<ListPtr>(v_)->is_tuple; }

const std::string& Value::UndefinedHint() const { return *std::get<UndefinedTag>(v_).hint; }

int Value::Depth() const {
  switch (kind()) {
    case Kind::kList:
      return std::get<ListPtr>(v_)->depth;
    case Kind::kDict:
      return AsDict().depth_;
    case Kind::kCallable:
      return AsCallable().self.Depth() + 1;
    default:
      return 0;
  }
}

Result<std::string> ToStr(const Value& v, size_t limit) {
  std::string out;
  RETURN_IF_ERROR(AppendStr(v, limit, 0, out));
  return out;
}

Result<std::string> Repr(const Value& v, size_t limit) {
  std::string out;
  RETURN_IF_ERROR(AppendRepr(v, limit, 0, out));
  return out;
}

bool Truthy(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return v.AsBool();
    case Kind::kInt:
      return v.AsInt() != 0;
    case Kind::kFloat:
      return v.AsDouble() != 0.0;
    case Kind::kString:
      return !v.AsString().empty();
    case Kind::kList:
      return !v.Items().empty();
    case Kind::kDict:
      return v.AsDict().size() > 0;
    default:
      return true;
  }
}

bool Equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) return a.AsInt() == b.AsInt();
    return a.AsDouble() == b.AsDouble();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::kUndefined:
    case Kind::kNone:
      return true;
    case Kind::kString:
      return a.AsString() == b.AsString();
    case Kind::kList: {
      if (a.IsTuple() != b.IsTuple() || a.Items().size() != b.Items().size()) return false;
      for (size_t i = 0; i < a.Items().size(); ++i) {
        if (!Equals(a.Items()[i], b.Items()[i])) return false;
      }
      return true;
    }
    case Kind::kDict: {
      if (a.AsDict().size() != b.AsDict().size()) return false;
      for (const auto& [key, value] : a.AsDict().entries()) {
        const Value* other = b.AsDict().Find(key);
        if (other == nullptr || !Equals(value, *other)) return false;
      }
      return true;
    }
    case Kind::kNamespace:
      return a.AsNamespace() == b.AsNamespace();
    case Kind::kLoop:
      return a.AsLoop() == b.AsLoop();
    case Kind::kCallable:
      return &a.AsCallable() == &b.AsCallable();
    default:
      return false;
  }
}

Result<int> Compare(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) {
      return a.AsInt() < b.AsInt() ? -1 : a.AsInt() > b.AsInt() ? 1 : 0;
    }
    double x = a.AsDouble(), y = b.AsDouble();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    int c = a.AsString().compare(b.AsString());
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.is_list() && b.is_list() && a.IsTuple() == b.IsTuple()) {
    const auto& x = a.Items();
    const auto& y = b.Items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (Equals(x[i], y[i])) continue;
      return Compare(x[i], y[i]);
    }
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  return InvalidArgumentError("'<' not supported between instances of '" + TypeName(a) + "' and '" +
                              TypeName(b) + "'");
}

std::string FormatFloat(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string_view sci(buf, res.ptr - buf);
  std::string out;
  if (!sci.empty() && sci[0] == '-') {
    out += '-';
    sci.remove_prefix(1);
  }
  size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e)) {
    if (c != '.') digits += c;
  }
  int exp = 0;
  std::string_view exp_text = sci.substr(e + 1);
  if (!exp_text.empty() && exp_text[0] == '+') exp_text.remove_prefix(1);
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exp);
  int decpt = exp + 1;
  int n = static_cast<int>(digits.size());
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0." + std::string(-decpt, '0') + digits;
    } else if (decpt >= n) {
      out += digits + std::string(decpt - n, '0') + ".0";
    } else {
      out += digits.substr(0, decpt) + "." + digits.substr(decpt);
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (n > 1) out += "." + digits.substr(1);
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
  return out + exp_buf;
}

std::string TypeName(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined:
      return "Undefined";
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kList:
      return v.IsTuple() ? "tuple" : "list";
    case Kind::kDict:
      return "dict";
    case Kind::kNamespace:
      return "Namespace";
    case Kind::kCallable:
      return "function";
    case Kind::kLoop:
      return "LoopContext";
  }
  return "object";
}

uint32_t DecodeAt(std::string_view s, size_t& i) {
  unsigned char c = s[i];
  int n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
  if (n <= 0 || i + n >= s.size()) {
    ++i;
    return c;
  }
  uint32_t cp = c & (0x3F >> n);
  for (int k = 1; k <= n; ++k) {
    unsigned char cc = s[i + k];
    if ((cc & 0xC0) != 0x80) {
      ++i;
      return c;
    }
    cp = (cp << 6) | (cc & 0x3F);
  }
  i += n + 1;
  return cp;
}

size_t CodePointCount(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size();) {
    DecodeAt(s, i);
    ++n;
  }
  return n;
}

std::vector<size_t> CodePointOffsets(std::string_view s) {
  std::vector<size_t> offsets;
  for (size_t i = 0; i < s.size();) {
    offsets.push_back(i);
    DecodeAt(s, i);
  }
  offsets.push_back(s.size());
  return offsets;
}

std::string EncodeUtf8(uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

}  // namespace hubnode::runtime::jinja
