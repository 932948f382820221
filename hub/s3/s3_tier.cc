#include "hub/s3/s3_tier.h"

namespace hubnode::hub::s3 {
namespace {

// Packs past this size go up as a multipart upload of parts this size.
constexpr uint64_t kPartBytes = uint64_t{16} << 20;

bool PackName(std::string_view name) {
  if (name.size() != 32) return false;
  for (char c : name) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

class S3ChunkTier final : public store::ChunkTier {
 public:
  S3ChunkTier(std::shared_ptr<S3Client> client, std::string prefix)
      : client_(std::move(client)), prefix_(std::move(prefix)) {}

  Status PutPack(std::string_view name, std::string_view bytes) override {
    if (!PackName(name)) return InvalidArgumentError("bad pack name");
    return client_->PutLarge(Key(name), bytes, kPartBytes);
  }

  Result<std::string> ReadPack(std::string_view name, uint64_t offset, uint64_t length) override {
    if (!PackName(name)) return InvalidArgumentError("bad pack name");
    return client_->GetRange(Key(name), offset, length);
  }

  Status DeletePack(std::string_view name) override {
    if (!PackName(name)) return InvalidArgumentError("bad pack name");
    return client_->Delete(Key(name));
  }

  Result<std::vector<PackInfo>> ListPacks(std::string_view after, std::string_view until) override {
    const std::string dir = prefix_ + "packs/";
    std::vector<PackInfo> out;
    std::string token;
    do {
      // Keys come in order: the listing stops at the first name past `until`.
      ASSIGN_OR_RETURN(ListPage page, client_->List(dir, token, 1000, after.empty() ? std::string() : Key(after)));
      for (const auto& o : page.objects) {
        std::string_view name = std::string_view(o.key).substr(std::min(o.key.size(), dir.size()));
        if (!until.empty() && name >= until) return out;
        if (name.size() != 37 || name.substr(32) != ".pack" || !PackName(name.substr(0, 32))) continue;
        out.push_back(PackInfo{std::string(name.substr(0, 32)), o.size});
      }
      token = page.next_token;
    } while (!token.empty());
    return out;
  }

  Result<std::optional<std::string>> GetControl(std::string_view name, uint64_t max_bytes) override {
    auto got = client_->Get(prefix_ + std::string(name), max_bytes);
    if (!got.ok() && got.status().code() == StatusCode::kNotFound) return std::optional<std::string>();
    if (!got.ok()) return got.status();
    return std::optional<std::string>(std::move(*got));
  }

  Status PutControl(std::string_view name, std::string_view bytes) override {
    return client_->PutLarge(prefix_ + std::string(name), bytes, kPartBytes);
  }

  Status DeleteControl(std::string_view name) override { return client_->Delete(prefix_ + std::string(name)); }

  Result<std::vector<std::string>> ListControls(std::string_view dir) override {
    ASSIGN_OR_RETURN(auto objects, client_->ListAll(prefix_ + std::string(dir)));
    std::vector<std::string> out;
    for (const auto& o : objects) out.push_back(o.key.substr(std::min(o.key.size(), prefix_.size())));
    return out;
  }

  std::string Describe() const override { return "s3://" + client_->options().bucket + "/" + prefix_; }

 private:
  std::string Key(std::string_view name) const { return prefix_ + "packs/" + std::string(name) + ".pack"; }

  std::shared_ptr<S3Client> client_;
  std::string prefix_;
};

}  // namespace

std::shared_ptr<store::ChunkTier> NewS3ChunkTier(std::shared_ptr<S3Client> client, std::string prefix) {
  return std::make_shared<S3ChunkTier>(std::move(client), std::move(prefix));
}

Result<std::shared_ptr<store::ChunkTier>> OpenS3ChunkTier(std::string_view url) {
  ASSIGN_OR_RETURN(S3Url u, ParseS3Url(url));
  ASSIGN_OR_RETURN(S3Options o, S3OptionsFromEnv(u.bucket));
  ASSIGN_OR_RETURN(std::unique_ptr<S3Client> client, S3Client::Create(std::move(o)));
  // shared_ptr: the tier keeps the client, and the caller may keep the tier past the store.
  return NewS3ChunkTier(std::shared_ptr<S3Client>(std::move(client)), u.prefix);
}

Status CreateBucketFor(std::string_view url) {
  ASSIGN_OR_RETURN(S3Url u, ParseS3Url(url));
  ASSIGN_OR_RETURN(S3Options o, S3OptionsFromEnv(u.bucket));
  ASSIGN_OR_RETURN(std::unique_ptr<S3Client> client, S3Client::Create(std::move(o)));
  return client->CreateBucket();
}

}  // namespace hubnode::hub::s3
