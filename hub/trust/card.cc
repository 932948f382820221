#include "hub/trust/card.h"

#include <yaml-cpp/yaml.h>

#include <charconv>

namespace hubnode::hub {
namespace {

using json = nlohmann::json;
constexpr int kMaxDepth = 32;

json ScalarToJson(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "?") {  // plain (unquoted) scalar: YAML core schema types
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
    if (s.empty() || s == "null" || s == "~" || s == "Null" || s == "NULL") return nullptr;
    int64_t i;
    auto r = std::from_chars(s.data(), s.data() + s.size(), i);
    if (r.ec == std::errc() && r.ptr == s.data() + s.size()) return i;
    double d;
    auto rd = std::from_chars(s.data(), s.data() + s.size(), d);
    if (rd.ec == std::errc() && rd.ptr == s.data() + s.size()) return d;
  }
  return s;
}

json ToJson(const YAML::Node& n, int depth) {
  if (depth > kMaxDepth) return nullptr;
  switch (n.Type()) {
    case YAML::NodeType::Scalar: return ScalarToJson(n);
    case YAML::NodeType::Sequence: {
      json a = json::array();
      for (const auto& e : n) a.push_back(ToJson(e, depth + 1));
      return a;
    }
    case YAML::NodeType::Map: {
      json o = json::object();
      for (const auto& kv : n) {
        if (!kv.first.IsScalar()) continue;
        o[kv.first.Scalar()] = ToJson(kv.second, depth + 1);
      }
      return o;
    }
    default: return nullptr;
  }
}

}  // namespace

nlohmann::json CardDataFromReadme(std::string_view readme) {
  if (readme.substr(0, 4) != "---\n" && readme.substr(0, 5) != "---\r\n") return nullptr;
  size_t start = readme.find('\n') + 1;
  size_t end = readme.find("\n---", start - 1);
  if (end == std::string_view::npos) return nullptr;
  std::string yaml(readme.substr(start, end + 1 - start));
  try {
    YAML::Node node = YAML::Load(yaml);
    if (!node.IsMap()) return nullptr;
    return ToJson(node, 0);
  } catch (const std::exception&) {
    return nullptr;  // malformed YAML: no card data
  }
}

}  // namespace hubnode::hub
