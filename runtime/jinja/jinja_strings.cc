// Python's str methods for templates: strip family, split/rsplit, startswith/endswith, case
// mapping (ASCII), replace, find/count, join, format and the is* predicates.
#include <algorithm>

#include "runtime/jinja/jinja_value.h"

namespace hubnode::runtime::jinja {
namespace {

bool IsPySpace(uint32_t cp) {
  return cp == ' ' || (cp >= '\t' && cp <= '\r') || (cp >= 0x1C && cp <= 0x1F) || cp == 0x85 ||
         cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
         cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

std::vector<uint32_t> Decode(std::string_view s) {
  std::vector<uint32_t> cps;
  std::vector<size_t> off = CodePointOffsets(s);
  for (size_t i = 0; i + 1 < off.size(); ++i) {
    std::string_view ch = s.substr(off[i], off[i + 1] - off[i]);
    uint32_t cp = static_cast<unsigned char>(ch[0]);
    if (ch.size() > 1) {
      cp &= 0x3F >> (ch.size() - 1);
      for (size_t k = 1; k < ch.size(); ++k) cp = (cp << 6) | (ch[k] & 0x3F);
    }
    cps.push_back(cp);
  }
  return cps;
}

std::string Encode(const std::vector<uint32_t>& cps, size_t from, size_t to) {
  std::string out;
  for (size_t i = from; i < to; ++i) out += EncodeUtf8(cps[i]);
  return out;
}

Status ArgError(std::string_view fn, std::string_view why) {
  return InvalidArgumentError(std::string(fn) + "(): " + std::string(why));
}

Result<std::string> StrArg(const Args& args, size_t index, std::string_view name,
                           std::string_view fn) {
  const Value* v = args.Get(index, name);
  if (v == nullptr || !v->is_string()) return ArgError(fn, std::string(name) + " must be a str");
  return v->AsString();
}

// Python's str.strip family; `chars` null strips whitespace.
std::string Strip(std::string_view s, const Value* chars, bool left, bool right) {
  std::vector<uint32_t> cps = Decode(s);
  std::vector<uint32_t> set;
  bool use_set = chars != nullptr && chars->is_string();
  if (use_set) set = Decode(chars->AsString());
  auto strip = [&](uint32_t cp) {
    return use_set ? std::find(set.begin(), set.end(), cp) != set.end() : IsPySpace(cp);
  };
  size_t b = 0, e = cps.size();
  if (left) {
    while (b < e && strip(cps[b])) ++b;
  }
  if (right) {
    while (e > b && strip(cps[e - 1])) --e;
  }
  return Encode(cps, b, e);
}

Result<Value> StringList(std::vector<std::string> parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (auto& p : parts) items.push_back(Value::String(std::move(p)));
  return Value::List(std::move(items));
}

Result<Value> Split(const std::string& s, const Args& args, bool from_right) {
  const Value* sep = args.Get(0, "sep");
  const Value* max = args.Get(1, "maxsplit");
  int64_t maxsplit = max != nullptr && max->is_integral() ? max->AsInt() : -1;
  std::vector<std::string> parts;
  if (sep == nullptr || sep->is_none()) {
    std::vector<uint32_t> cps = Decode(s);
    std::vector<std::pair<size_t, size_t>> words;
    for (size_t i = 0; i < cps.size();) {
      while (i < cps.size() && IsPySpace(cps[i])) ++i;
      if (i == cps.size()) break;
      size_t j = i;
      while (j < cps.size() && !IsPySpace(cps[j])) ++j;
      words.emplace_back(i, j);
      i = j;
    }
    size_t n = words.size();
    if (maxsplit >= 0 && static_cast<size_t>(maxsplit) + 1 < n) {
      // The last (or, from the right, first) part keeps the rest verbatim, minus outer spaces.
      size_t keep = static_cast<size_t>(maxsplit);
      if (!from_right) {
        for (size_t k = 0; k < keep; ++k)
          parts.push_back(Encode(cps, words[k].first, words[k].second));
        parts.push_back(Encode(cps, words[keep].first, words[n - 1].second));
      } else {
        parts.push_back(Encode(cps, words[0].first, words[n - 1 - keep].second));
        for (size_t k = n - keep; k < n; ++k)
          parts.push_back(Encode(cps, words[k].first, words[k].second));
      }
    } else {
      for (auto [b, e] : words) parts.push_back(Encode(cps, b, e));
    }
    return StringList(std::move(parts));
  }
  if (!sep->is_string()) return ArgError("split", "sep must be str or None");
  const std::string& d = sep->AsString();
  if (d.empty()) return InvalidArgumentError("empty separator");
  if (!from_right) {
    size_t start = 0;
    while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
      size_t at = s.find(d, start);
      if (at == std::string::npos) break;
      parts.push_back(s.substr(start, at - start));
      start = at + d.size();
    }
    parts.push_back(s.substr(start));
  } else {
    size_t end = s.size();
    while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
      if (end < d.size()) break;
      size_t at = s.rfind(d, end - d.size());
      if (at == std::string::npos) break;
      parts.push_back(s.substr(at + d.size(), end - at - d.size()));
      end = at;
    }
    parts.push_back(s.substr(0, end));
    std::reverse(parts.begin(), parts.end());
  }
  return StringList(std::move(parts));
}

char AsciiUpper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; }
char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }
bool AsciiAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Python's str.format with {}, {0} and {name} fields (no format specs or conversions).
Result<Value> Format(Env& env, const std::string& fmt, const Args& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}')
        ++i;
      else
        return InvalidArgumentError("Single '}' encountered in format string");
      out += '}';
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    size_t close = fmt.find('}', i);
    if (close == std::string::npos) return InvalidArgumentError("unmatched '{' in format spec");
    std::string field = fmt.substr(i + 1, close - i - 1);
    const Value* v = nullptr;
    if (field.empty()) {
      if (auto_index < args.pos.size()) v = &args.pos[auto_index++];
    } else if (std::all_of(field.begin(), field.end(), ::isdigit) && field.size() < 6) {
      size_t k = std::stoul(field);
      if (k < args.pos.size()) v = &args.pos[k];
    } else {
      for (const auto& [name, value] : args.kw) {
        if (name == field) v = &value;
      }
    }
    if (v == nullptr)
      return InvalidArgumentError("format(): no argument for field {" + field + "}");
    ASSIGN_OR_RETURN(std::string s, ToStr(*v, env.max_string()));
    out += s;
    if (out.size() > env.max_string()) return ResourceExhaustedError("string too long");
    i = close;
  }
  return MakeString(env, std::move(out));
}

Result<Value> StringMethodImpl(Env& env, const std::string& s, std::string_view name,
                               const Args& args) {
  RETURN_IF_ERROR(env.Charge(s.size()));
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    return Value::String(Strip(s, args.Get(0, "chars"), name != "rstrip", name != "lstrip"));
  }
  if (name == "split") return Split(s, args, false);
  if (name == "rsplit") return Split(s, args, true);
  if (name == "startswith" || name == "endswith") {
    const Value* arg = args.Get(0, "prefix");
    if (arg == nullptr) return ArgError(name, "takes at least 1 argument");
    std::vector<Value> options = arg->is_list() ? arg->Items() : std::vector<Value>{*arg};
    for (const Value& o : options) {
      if (!o.is_string()) return ArgError(name, "argument must be str or a tuple of str");
      const std::string& p = o.AsString();
      bool hit = name == "startswith"
                     ? s.compare(0, p.size(), p) == 0
                     : s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
      if (hit) return Value::Bool(true);
    }
    return Value::Bool(false);
  }
  if (name == "upper" || name == "lower") {
    std::string out = s;
    for (char& c : out) c = name == "upper" ? AsciiUpper(c) : AsciiLower(c);
    return Value::String(std::move(out));
  }
  if (name == "title" || name == "capitalize") {
    std::string out = s;
    bool prev_cased = false;
    for (size_t i = 0; i < out.size(); ++i) {
      if (name == "capitalize") {
        out[i] = i == 0 ? AsciiUpper(out[i]) : AsciiLower(out[i]);
        continue;
      }
      out[i] = prev_cased ? AsciiLower(out[i]) : AsciiUpper(out[i]);
      prev_cased = AsciiAlpha(out[i]);
    }
    return Value::String(std::move(out));
  }
  if (name == "replace") {
    ASSIGN_OR_RETURN(std::string from, StrArg(args, 0, "old", name));
    ASSIGN_OR_RETURN(std::string to, StrArg(args, 1, "new", name));
    const Value* c = args.Get(2, "count");
    Args filter_args;
    filter_args.pos = {Value::String(from), Value::String(to)};
    if (c != nullptr) filter_args.pos.push_back(*c);
    return ApplyFilter(env, "replace", Value::String(s), filter_args);
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    ASSIGN_OR_RETURN(std::string sub, StrArg(args, 0, "sub", name));
    if (name == "count") {
      if (sub.empty()) return Value::Int(static_cast<int64_t>(CodePointCount(s)) + 1);
      int64_t n = 0;
      for (size_t at = s.find(sub); at != std::string::npos; at = s.find(sub, at + sub.size())) ++n;
      return Value::Int(n);
    }
    size_t at = name[0] == 'r' ? s.rfind(sub) : s.find(sub);
    if (at == std::string::npos) {
      if (name == "index" || name == "rindex") return InvalidArgumentError("substring not found");
      return Value::Int(-1);
    }
    return Value::Int(static_cast<int64_t>(CodePointCount(std::string_view(s).substr(0, at))));
  }
  if (name == "join") {
    const Value* items = args.Get(0, "iterable");
    if (items == nullptr) return ArgError(name, "takes exactly one argument");
    ASSIGN_OR_RETURN(std::vector<Value> parts, Iterate(*items));
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (!parts[i].is_string()) {
        return InvalidArgumentError("sequence item " + std::to_string(i) +
                                    ": expected str instance, " + TypeName(parts[i]) + " found");
      }
      if (i > 0) out += s;
      out += parts[i].AsString();
      if (out.size() > env.max_string()) return ResourceExhaustedError("string too long");
    }
    return Value::String(std::move(out));
  }
  if (name == "format") return Format(env, s, args);
  if (name == "splitlines") {
    Args a;
    ASSIGN_OR_RETURN(Value lines, ApplyFilter(env, "__splitlines", Value::String(s), a));
    return lines;
  }
  auto all = [&](auto pred) {
    return Value::Bool(!s.empty() && std::all_of(s.begin(), s.end(), pred));
  };
  if (name == "isdigit") return all([](char c) { return c >= '0' && c <= '9'; });
  if (name == "isalpha") return all([](char c) { return AsciiAlpha(c); });
  if (name == "isalnum") return all([](char c) { return AsciiAlpha(c) || (c >= '0' && c <= '9'); });
  if (name == "isspace")
    return all([](char c) { return IsPySpace(static_cast<unsigned char>(c)); });
  if (name == "islower" || name == "isupper") {
    bool cased = false, ok = true;
    for (char c : s) {
      if (!AsciiAlpha(c)) continue;
      cased = true;
      if ((name == "islower") != (c >= 'a' && c <= 'z')) ok = false;
    }
    return Value::Bool(cased && ok);
  }
  return InvalidArgumentError("'str' object has no method '" + std::string(name) + "'");
}

constexpr std::string_view kStringMethods[] = {
    "strip",   "lstrip",  "rstrip",  "split",      "rsplit",  "startswith", "endswith",
    "upper",   "lower",   "title",   "capitalize", "replace", "find",       "rfind",
    "index",   "rindex",  "count",   "join",       "format",  "splitlines", "isdigit",
    "isalpha", "isalnum", "isspace", "islower",    "isupper"};

}  // namespace

bool IsStringMethod(std::string_view name) {
  return std::find(std::begin(kStringMethods), std::end(kStringMethods), name) !=
         std::end(kStringMethods);
}

Result<Value> CallStringMethod(Env& env, const std::string& s, std::string_view name,
                               const Args& args) {
  return StringMethodImpl(env, s, name, args);
}

}  // namespace hubnode::runtime::jinja
