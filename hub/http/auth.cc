#include "hub/http/auth.h"

#include <openssl/evp.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/hash.h"
#include "base/json_limits.h"

namespace hubnode::hub {
namespace {

using json = nlohmann::json;
constexpr size_t kSecretChars = 34;

int64_t MtimeNs(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

bool ValidName(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  }
  return true;
}

}  // namespace

std::string_view ScopeName(Scope s) { return s == Scope::kWrite ? "write" : "read"; }

Status TokenStore::Load() {
  int64_t mtime = MtimeNs(path_);
  if (mtime == loaded_mtime_ns_) return OkStatus();
  records_.clear();
  loaded_mtime_ns_ = mtime;
  if (mtime == 0) return OkStatus();  // no file yet: no tokens
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path_, 16 << 20));
  json doc = (JsonDepthWithin(text) ? json::parse(text, nullptr, false) : json(json::value_t::discarded));
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("tokens") || !doc["tokens"].is_array()) {
    return DataLossError("token file " + path_ + " is malformed");
  }
  for (const auto& t : doc["tokens"]) {
    if (!t.is_object() || !t.value("name", json()).is_string() || !t.value("sha256", json()).is_string()) {
      return DataLossError("token file " + path_ + " has a malformed entry");
    }
    Record r;
    r.info.name = t["name"].get<std::string>();
    r.info.scope = t.value("scope", std::string("read")) == "write" ? Scope::kWrite : Scope::kRead;
    r.info.ns = t.value("namespace", std::string());
    r.info.created = t.value("created", int64_t{0});
    r.hash_hex = t["sha256"].get<std::string>();
    records_.push_back(std::move(r));
  }
  return OkStatus();
}

Status TokenStore::Save() {
  json tokens = json::array();
  for (const auto& r : records_) {
    tokens.push_back({{"name", r.info.name}, {"scope", std::string(ScopeName(r.info.scope))},
                      {"namespace", r.info.ns}, {"created", r.info.created}, {"sha256", r.hash_hex}});
  }
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), ec);
  RETURN_IF_ERROR(WriteFileAtomic(path_, json{{"tokens", tokens}}.dump(2) + "\n"));
  ::chmod(path_.c_str(), 0600);
  loaded_mtime_ns_ = MtimeNs(path_);
  return OkStatus();
}

Result<std::string> TokenStore::Create(const std::string& name, Scope scope, const std::string& ns) {
  if (!ValidName(name)) return InvalidArgumentError("token name must be 1-64 of [A-Za-z0-9._-]");
  if (!ns.empty() && !store::RepoId::Parse(ns).ok()) return InvalidArgumentError("invalid namespace '" + ns + "'");
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(Load());
  for (const auto& r : records_) {
    if (r.info.name == name) return AlreadyExistsError("a token named '" + name + "' exists");
  }
  static const char kAlphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string secret = "hf_";
  unsigned char buf[kSecretChars];
  if (RAND_bytes(buf, sizeof buf) != 1) return InternalError("no randomness for a token");
  for (unsigned char b : buf) secret.push_back(kAlphabet[b % 62]);  // 62*4=248: bias under 2%/char
  Record r;
  r.info = TokenInfo{name, scope, ns, static_cast<int64_t>(std::time(nullptr))};
  r.hash_hex = Sha256Of(secret).hex();
  records_.push_back(r);
  RETURN_IF_ERROR(Save());
  return secret;
}

Status TokenStore::Revoke(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(Load());
  size_t before = records_.size();
  std::erase_if(records_, [&](const Record& r) { return r.info.name == name; });
  if (records_.size() == before) return NotFoundError("no token named '" + name + "'");
  return Save();
}

Result<std::vector<TokenInfo>> TokenStore::List() {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(Load());
  std::vector<TokenInfo> out;
  for (const auto& r : records_) out.push_back(r.info);
  return out;
}

Result<std::optional<Principal>> TokenStore::Authenticate(const std::string& authorization) {
  if (authorization.empty()) return std::optional<Principal>();
  constexpr std::string_view kBearer = "Bearer ", kBasic = "Basic ";
  std::string token;
  if (authorization.size() > kBearer.size() && authorization.compare(0, kBearer.size(), kBearer) == 0) {
    token = authorization.substr(kBearer.size());
  } else if (authorization.size() > kBasic.size() && authorization.size() < 1024 &&
             authorization.compare(0, kBasic.size(), kBasic) == 0) {
    // git and git-lfs send the token as the password of HTTP Basic (any user name), as on the Hub.
    std::string b64 = authorization.substr(kBasic.size());
    // Padding only at the end, at most two '='; EVP_DecodeBlock decodes it as zero bytes.
    size_t pad = 0;
    while (pad < b64.size() && b64[b64.size() - 1 - pad] == '=') ++pad;
    const bool well_formed = !b64.empty() && b64.size() % 4 == 0 && pad <= 2 &&
                             b64.find('=') == (pad == 0 ? std::string::npos : b64.size() - pad);
    std::string raw(b64.size(), '\0');
    int n = well_formed ? EVP_DecodeBlock(reinterpret_cast<unsigned char*>(raw.data()),
                                          reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()))
                        : -1;
    if (n < static_cast<int>(pad)) return Status(StatusCode::kUnauthenticated, "Invalid credentials in Authorization header");
    raw.resize(static_cast<size_t>(n) - pad);
    size_t colon = raw.find(':');
    if (colon == std::string::npos) return Status(StatusCode::kUnauthenticated, "Invalid credentials in Authorization header");
    token = raw.substr(colon + 1);
  } else {
    return Status(StatusCode::kUnauthenticated, "Invalid credentials in Authorization header");
  }
  std::string hash = Sha256Of(token).hex();
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(Load());
  const Record* match = nullptr;
  for (const auto& r : records_) {
    // Constant time per record, and every record is compared.
    if (r.hash_hex.size() == hash.size() && CRYPTO_memcmp(r.hash_hex.data(), hash.data(), hash.size()) == 0) {
      match = &r;
    }
  }
  if (!match) return Status(StatusCode::kUnauthenticated, "Invalid credentials in Authorization header");
  return std::optional<Principal>(Principal{match->info.name, match->info.scope, match->info.ns, match->info.created});
}

bool CanRead(const std::optional<Principal>& who, const store::RepoInfo& repo) {
  if (repo.visibility == store::Visibility::kPublic) return true;
  if (!who) return false;
  if (who->ns.empty()) return true;
  const std::string& id = repo.id.str();
  return id.size() > who->ns.size() && id.compare(0, who->ns.size(), who->ns) == 0 && id[who->ns.size()] == '/';
}

bool CanWrite(const std::optional<Principal>& who, const store::RepoId& repo) {
  if (!who || who->scope != Scope::kWrite) return false;
  if (who->ns.empty()) return true;
  return repo.ns() == who->ns;
}

}  // namespace hubnode::hub
