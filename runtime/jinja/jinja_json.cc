// json.dumps for templates (transformers' tojson filter) and JSON contexts into values.
//
// transformers overrides Jinja2's tojson with
//   json.dumps(x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)
// (transformers/utils/chat_template_utils.py). Unlike Jinja2's own tojson it does not escape
// < > & ' for HTML and keeps non-ASCII text as is; with indent the item separator is "," and
// without it ", ". Its positional order is (ensure_ascii, indent, separators, sort_keys).
#include <algorithm>
#include <cmath>

#include "runtime/jinja/jinja_value.h"

namespace hubnode::runtime::jinja {
namespace {

char Hex(int v) { return "0123456789abcdef"[v & 15]; }

Status TooLarge(size_t limit) {
  return ResourceExhaustedError("rendered value exceeds " + std::to_string(limit) + " bytes");
}

void AppendJsonString(std::string_view s, bool ensure_ascii, std::string& out) {
  out += '"';
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    uint32_t cp = DecodeAt(s, i);
    switch (cp) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    auto u16 = [&out](uint32_t unit) {
      out += "\\u";
      for (int shift = 12; shift >= 0; shift -= 4) out += Hex(unit >> shift);
    };
    if (cp < 0x20 || (ensure_ascii && cp == 0x7F)) {
      u16(cp);
    } else if (ensure_ascii && cp >= 0x80) {
      if (cp >= 0x10000) {
        u16(0xD800 + ((cp - 0x10000) >> 10));
        u16(0xDC00 + ((cp - 0x10000) & 0x3FF));
      } else {
        u16(cp);
      }
    } else {
      out.append(s.substr(start, i - start));
    }
  }
  out += '"';
}

Status AppendJson(const Value& v, const JsonStyle& style, size_t limit, int level,
                  std::string& out) {
  if (out.size() > limit) return TooLarge(limit);
  if (level > kMaxValueDepth) return ResourceExhaustedError("tojson: value nests too deeply");
  auto newline = [&](int lvl) {
    if (!style.indent) return;
    out += '\n';
    for (int i = 0; i < lvl; ++i) out += *style.indent;
  };
  switch (v.kind()) {
    case Kind::kNone:
      out += "null";
      break;
    case Kind::kBool:
      out += v.AsBool() ? "true" : "false";
      break;
    case Kind::kInt:
      out += std::to_string(v.AsInt());
      break;
    case Kind::kFloat: {
      double d = v.AsDouble();
      out += std::isnan(d)   ? "NaN"
             : std::isinf(d) ? (d > 0 ? "Infinity" : "-Infinity")
                             : FormatFloat(d);
      break;
    }
    case Kind::kString:
      AppendJsonString(v.AsString(), style.ensure_ascii, out);
      break;
    case Kind::kList: {
      const auto& items = v.Items();
      if (items.empty()) {
        out += "[]";
        break;
      }
      out += '[';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += style.item_separator;
        newline(level + 1);
        RETURN_IF_ERROR(AppendJson(items[i], style, limit, level + 1, out));
      }
      newline(level);
      out += ']';
      break;
    }
    case Kind::kDict: {
      const auto& entries = v.AsDict().entries();
      if (entries.empty()) {
        out += "{}";
        break;
      }
      std::vector<const std::pair<Value, Value>*> order;
      for (const auto& e : entries) order.push_back(&e);
      if (style.sort_keys) {
        std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
          auto c = Compare(a->first, b->first);
          return c.ok() && *c < 0;
        });
      }
      out += '{';
      for (size_t i = 0; i < order.size(); ++i) {
        if (i > 0) out += style.item_separator;
        newline(level + 1);
        const Value& key = order[i]->first;
        if (key.is_string()) {
          AppendJsonString(key.AsString(), style.ensure_ascii, out);
        } else {
          // json.dumps turns int, float, bool and None keys into their JSON text.
          out += '"';
          RETURN_IF_ERROR(AppendJson(key, style, limit, level + 1, out));
          out += '"';
        }
        out += style.key_separator;
        RETURN_IF_ERROR(AppendJson(order[i]->second, style, limit, level + 1, out));
      }
      newline(level);
      out += '}';
      break;
    }
    default:
      return InvalidArgumentError("Object of type " + TypeName(v) + " is not JSON serializable");
  }
  return out.size() > limit ? TooLarge(limit) : OkStatus();
}

template <typename Json>
Result<Value> FromJsonAt(const Json& j, int depth) {
  if (depth > kMaxValueDepth) return ResourceExhaustedError("context JSON nests too deeply");
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return Value::None();
    case nlohmann::json::value_t::boolean:
      return Value::Bool(j.template get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value::Int(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      uint64_t u = j.template get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value::Float(static_cast<double>(u));
      return Value::Int(static_cast<int64_t>(u));
    }
    case nlohmann::json::value_t::number_float:
      return Value::Float(j.template get<double>());
    case nlohmann::json::value_t::string:
      return Value::String(j.template get<std::string>());
    case nlohmann::json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) {
        ASSIGN_OR_RETURN(Value item, FromJsonAt(e, depth + 1));
        items.push_back(std::move(item));
      }
      return Value::List(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      DictData d;
      for (const auto& [key, e] : j.items()) {
        ASSIGN_OR_RETURN(Value item, FromJsonAt(e, depth + 1));
        d.Set(Value::String(key), std::move(item));
      }
      return Value::Dict(std::move(d));
    }
    default:
      return Value::None();  // Binary and discarded values do not come from a parse.
  }
}

bool Flag(const Args& args, size_t index, std::string_view name, bool dflt) {
  const Value* v = args.Get(index, name);
  return v == nullptr ? dflt : Truthy(*v);
}

}  // namespace

Result<std::string> ToJson(const Value& v, const JsonStyle& style, size_t limit) {
  std::string out;
  RETURN_IF_ERROR(AppendJson(v, style, limit, 0, out));
  return out;
}

Result<Value> FromJson(const nlohmann::ordered_json& j) { return FromJsonAt(j, 0); }
Result<Value> FromJson(const nlohmann::json& j) { return FromJsonAt(j, 0); }

Result<Value> ToJsonFilter(Env& env, const Value& v, const Args& args) {
  JsonStyle style;
  style.ensure_ascii = Flag(args, 0, "ensure_ascii", false);
  const Value* indent = args.Get(1, "indent");
  if (indent != nullptr && indent->is_integral()) {
    style.indent =
        std::string(static_cast<size_t>(std::clamp<int64_t>(indent->AsInt(), 0, 64)), ' ');
  } else if (indent != nullptr && indent->is_string()) {
    style.indent = indent->AsString();
  }
  if (style.indent) style.item_separator = ",";
  const Value* seps = args.Get(2, "separators");
  if (seps != nullptr && !seps->is_none()) {
    if (!seps->is_list() || seps->Items().size() != 2 || !seps->Items()[0].is_string() ||
        !seps->Items()[1].is_string()) {
      return InvalidArgumentError("tojson: separators must be a pair of strings");
    }
    style.item_separator = seps->Items()[0].AsString();
    style.key_separator = seps->Items()[1].AsString();
  }
  style.sort_keys = Flag(args, 3, "sort_keys", false);
  ASSIGN_OR_RETURN(std::string s, ToJson(v, style, env.max_string()));
  return Value::String(std::move(s));
}

// Python's round(x, n): the correctly rounded decimal, ties to even (as glibc's printf).

}  // namespace hubnode::runtime::jinja
