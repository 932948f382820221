#include "hub/trust/lineage.h"

#include <map>
#include <set>

namespace hubnode::hub {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxNodes = 500;  // models in one answer, however the cards point

struct Ctx {
  store::Store& st;
  const LineageOptions& o;
  std::map<std::string, std::vector<std::string>> children;  // base id -> derived ids
  // Each repo is read and assessed once, however often the graph reaches it.
  std::map<std::string, std::pair<std::optional<json>, verify::ModelCard>> described;
  size_t nodes = 0;
  bool truncated = false;
  bool Room() {
    if (nodes >= kMaxNodes) {
      truncated = true;
      return false;
    }
    ++nodes;
    return true;
  }
};

// base_model entries, each once, in card order.
std::vector<std::string> Unique(const std::vector<std::string>& v) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& x : v) {
    if (seen.insert(x).second) out.push_back(x);
  }
  return out;
}

verify::ModelCard CardOf(store::Store& st, const store::RepoId& id, const GitOid& commit) {
  auto readme = CommitView(st, id, commit).read("README.md");
  return verify::ReadModelCard(readme.value_or(""));
}

// One model's own fields; nullopt when it is not on this node (or not visible).
std::optional<json> DescribeOnce(Ctx& c, const std::string& name, verify::ModelCard* card);

std::optional<json> Describe(Ctx& c, const std::string& name, verify::ModelCard* card) {
  auto it = c.described.find(name);
  if (it == c.described.end()) {
    verify::ModelCard fresh;
    auto j = DescribeOnce(c, name, &fresh);
    it = c.described.emplace(name, std::make_pair(std::move(j), std::move(fresh))).first;
  }
  *card = it->second.second;
  return it->second.first;
}

std::optional<json> DescribeOnce(Ctx& c, const std::string& name, verify::ModelCard* card) {
  auto id = store::RepoId::Parse(name);
  if (!id.ok()) return std::nullopt;
  auto info = c.st.GetRepo(*id);
  if (!info.ok() || (c.o.visible && !c.o.visible(*info))) return std::nullopt;
  auto head = c.st.Resolve(*id, "HEAD");
  if (!head.ok()) return std::nullopt;
  *card = CardOf(c.st, *id, *head);
  TrustReport t = c.o.trust(*info, *head);
  json j = {{"id", name}, {"onNode", true}, {"sha", head->hex()}, {"license", t.spdx},
            {"licenseClass", t.license_class}, {"signature", t.signature},
            {"verdict", std::string(verify::VerdictName(t.verdict))}};
  if (card->base_model_relation) j["relation"] = *card->base_model_relation;
  return j;
}

json Up(Ctx& c, const std::string& name, int depth, std::set<std::string>& path) {
  verify::ModelCard card;
  auto j = Describe(c, name, &card);
  if (!j) return json{{"id", name}, {"onNode", false}};
  json bases = json::array();
  if (depth < c.o.max_depth && path.insert(name).second) {
    for (const auto& b : Unique(card.base_model)) {
      if (!c.Room()) break;
      bases.push_back(Up(c, b, depth + 1, path));
    }
    path.erase(name);
  }
  (*j)["bases"] = bases;
  return *j;
}

json Down(Ctx& c, const std::string& name, int depth, std::set<std::string>& path) {
  json derived = json::array();
  if (depth >= c.o.max_depth || !path.insert(name).second) return derived;
  for (const auto& child : Unique(c.children[name])) {
    if (!c.Room()) break;
    verify::ModelCard card;
    auto j = Describe(c, child, &card);
    if (!j) continue;
    (*j)["derived"] = Down(c, child, depth + 1, path);
    derived.push_back(*j);
  }
  path.erase(name);
  return derived;
}

}  // namespace

Result<json> Lineage(store::Store& st, const store::RepoId& repo, const LineageOptions& options) {
  Ctx c{st, options, {}};
  verify::ModelCard card;
  auto self = Describe(c, repo.str(), &card);
  if (!self) return NotFoundError("repository '" + repo.str() + "' not found");
  // Which models on this node name which bases (each model's card at its default branch).
  ASSIGN_OR_RETURN(auto repos, st.ListRepos());
  size_t scanned = 0;
  for (const auto& r : repos) {
    if (++scanned > options.max_repos) break;
    if (options.visible && !options.visible(r)) continue;
    auto head = st.Resolve(r.id, "HEAD");
    if (!head.ok()) continue;
    for (const auto& b : CardOf(st, r.id, *head).base_model) c.children[b].push_back(r.id.str());
  }
  std::set<std::string> path;
  json j = Up(c, repo.str(), 0, path);
  j["derived"] = Down(c, repo.str(), 0, path);
  if (c.truncated) j["truncated"] = true;
  return j;
}

namespace {

std::string Line(const json& n) {
  if (!n.value("onNode", false)) return n.value("id", "") + "  (not on this node)";
  std::string s = n.value("id", "") + "  " + n.value("license", "") + " (" + n.value("licenseClass", "") +
                  ")  signature " + n.value("signature", "") + "  verdict " + n.value("verdict", "");
  if (n.contains("relation")) s += "  relation " + n["relation"].get<std::string>();
  return s;
}

void Bases(const json& n, int depth, std::string* out) {
  if (!n.contains("bases")) return;
  for (const auto& b : n["bases"]) {
    *out += std::string(2 * depth, ' ') + "base: " + Line(b) + "\n";
    Bases(b, depth + 1, out);
  }
}

void Derived(const json& n, int depth, std::string* out) {
  if (!n.contains("derived")) return;
  for (const auto& d : n["derived"]) {
    *out += std::string(2 * depth, ' ') + "derived: " + Line(d) + "\n";
    Derived(d, depth + 1, out);
  }
}

}  // namespace

std::string LineageText(const json& lineage) {
  std::string out = Line(lineage) + "\n";
  Bases(lineage, 1, &out);
  Derived(lineage, 1, &out);
  return out;
}

}  // namespace hubnode::hub
