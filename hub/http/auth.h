// Access tokens and who may read what.
//
// Tokens look like `hf_` + 34 base62 characters (the JS client refuses other prefixes). Only their
// SHA-256 is kept, in DATA/tokens.json (written atomically, mode 0600); presented tokens are
// compared in constant time. The file is re-read when it changes, so `hubnode token create` works
// while a server runs. Tokens are high-entropy random strings, so a fast hash is sufficient.
//
// Thread safety: TokenStore methods may be called concurrently.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "store/store.h"

namespace hubnode::hub {

enum class Scope { kRead, kWrite };

struct Principal {
  std::string token_name;
  Scope scope = Scope::kRead;
  std::string ns;  // empty = every namespace
  int64_t created = 0;
};

struct TokenInfo {
  std::string name;
  Scope scope;
  std::string ns;
  int64_t created;
};

class TokenStore {
 public:
  explicit TokenStore(std::string path) : path_(std::move(path)) {}

  // Creates a token and returns its secret (shown once). AlreadyExists for a taken name.
  Result<std::string> Create(const std::string& name, Scope scope, const std::string& ns);
  Status Revoke(const std::string& name);
  Result<std::vector<TokenInfo>> List();

  // The principal for an `Authorization` header value; nullopt when the header is empty.
  // Unauthenticated for a malformed or unknown token.
  Result<std::optional<Principal>> Authenticate(const std::string& authorization);

 private:
  struct Record {
    TokenInfo info;
    std::string hash_hex;
  };
  Status Load();  // REQUIRES: mu_ held
  Status Save();  // REQUIRES: mu_ held

  std::string path_;
  std::mutex mu_;
  std::vector<Record> records_;
  int64_t loaded_mtime_ns_ = -1;
};

// Whether `who` (nullopt = anonymous) may read a repo with this visibility.
bool CanRead(const std::optional<Principal>& who, const store::RepoInfo& repo);

// Whether `who` may write to `repo` (a write-scope token for its namespace, or for every one):
// the repo's writers, who also see the commits staged on its branches for review.
bool CanWrite(const std::optional<Principal>& who, const store::RepoId& repo);

std::string_view ScopeName(Scope s);

}  // namespace hubnode::hub
