#include "hub/serve/store_source.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "base/file.h"
#include "base/log.h"

namespace hubnode::hub {
namespace {

constexpr uint64_t kMaxSmallFile = 64 << 20;
// A shard whose copy is missing is asked for again at most this often (a Fill of a copy queued or
// present is a no-op, but it takes the cache's lock).
constexpr auto kRefillInterval = std::chrono::seconds(5);

Result<runtime::DType> ParseDType(const std::string& name, const std::string& tensor) {
  if (name == "BF16") return runtime::DType::kBF16;
  if (name == "F16") return runtime::DType::kF16;
  if (name == "F32") return runtime::DType::kF32;
  if (name == "F8_E4M3") return runtime::DType::kF8E4M3;
  return InvalidArgumentError("tensor " + tensor + " has dtype " + name +
                              " (supported: BF16, F16, F32, F8_E4M3)");
}

// Reads [offset, offset + out.size()) of a raw copy. DataLoss when the copy is shorter than that.
Status ReadRaw(const RawCache::Entry& entry, uint64_t offset, std::span<uint8_t> out) {
  if (offset > entry.size || out.size() > entry.size - offset)
    return DataLossError("range beyond the copy");
  size_t at = 0;
  while (at < out.size()) {
    const ssize_t n =
        ::pread(entry.fd, out.data() + at, out.size() - at, static_cast<off_t>(offset + at));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("cannot read", "a raw copy", errno);
    if (n == 0) return DataLossError("the copy is shorter than its file");
    at += static_cast<size_t>(n);
  }
  return OkStatus();
}

class StoreSourceImpl final : public StoreSource {
 public:
  StoreSourceImpl(store::Store* st, GitOid commit, StoreSourceOptions options)
      : st_(st), commit_(commit), raw_(options.raw_cache), stats_(std::move(options.stats)) {}

  Status Init() {
    ASSIGN_OR_RETURN(std::vector<store::FileEntry> files, st_->ListFiles(commit_));
    for (const store::FileEntry& f : files) {
      if (f.path.size() < 12 || f.path.compare(f.path.size() - 12, 12, ".safetensors") != 0)
        continue;
      ASSIGN_OR_RETURN(std::vector<store::TensorInfo> tensors, st_->ListTensors(f));
      auto shard = std::make_unique<Shard>();
      shard->file = f;
      for (const store::TensorInfo& t : tensors) {
        runtime::TensorDesc d;
        d.name = t.name;
        ASSIGN_OR_RETURN(d.dtype, ParseDType(t.dtype, t.name));
        for (uint64_t s : t.shape) d.shape.push_back(static_cast<int64_t>(s));
        if (d.bytes() != t.end - t.begin)
          return DataLossError("tensor " + t.name + ": size does not match its shape");
        if (!where_.emplace(t.name, Where{shard.get(), t.begin}).second) {
          return InvalidArgumentError("tensor " + t.name + " appears in two files");
        }
        if (t.name.find(".experts.") != std::string::npos) shard->has_experts = true;
        descs_.push_back(std::move(d));
      }
      shards_.push_back(std::move(shard));
    }
    if (descs_.empty()) return InvalidArgumentError("the revision has no safetensors weights");
    return OkStatus();
  }

  Result<std::string> ReadFile(std::string_view path) override {
    ASSIGN_OR_RETURN(store::FileEntry f, st_->StatFile(commit_, path));
    if (f.size > kMaxSmallFile)
      return InvalidArgumentError(std::string(path) + " is larger than 64 MiB");
    ASSIGN_OR_RETURN(auto reader, st_->OpenFile(f));
    return reader->ReadToString(0, f.size);
  }

  Result<std::vector<runtime::TensorDesc>> ListTensors() override { return descs_; }

  Status ReadTensor(std::string_view name, std::span<uint8_t> out) override {
    auto it = where_.find(std::string(name));
    if (it == where_.end()) return NotFoundError("no tensor " + std::string(name));
    Shard& shard = *it->second.shard;
    if (raw_) {
      // The copy is the file whose SHA-256 and size the file record names: RawCache::Open finds
      // only copies checked against that digest when written or re-hashed.
      if (auto entry = raw_->Open(shard.file.sha256, shard.file.size)) {
        Status s = ReadRaw(*entry, it->second.offset, out);
        if (s.ok()) {
          if (stats_) stats_->raw_bytes.fetch_add(out.size(), std::memory_order_relaxed);
          return OkStatus();
        }
        LOG(Warning) << "raw copy of " << shard.file.path << ": " << s.ToString()
                     << "; reading the chunks";
        raw_->Discard(shard.file.sha256);
      }
      if (shard.fill.load(std::memory_order_relaxed)) AskFill(shard);
    }
    ASSIGN_OR_RETURN(auto reader, st_->OpenFile(shard.file));
    size_t at = 0;
    RETURN_IF_ERROR(
        reader->Read(it->second.offset, out.size(), [&](std::string_view piece) -> Status {
          if (piece.size() > out.size() - at)
            return DataLossError("tensor " + std::string(name) + " read overran");
          std::memcpy(out.data() + at, piece.data(), piece.size());
          at += piece.size();
          return OkStatus();
        }));
    if (at != out.size()) return DataLossError("tensor " + std::string(name) + " read short");
    if (stats_) stats_->chunk_bytes.fetch_add(out.size(), std::memory_order_relaxed);
    return OkStatus();
  }

  void FillExpertShards() override {
    if (!raw_) return;
    uint64_t total = 0;
    for (const auto& shard : shards_) {
      if (!shard->has_experts || total + shard->file.size > raw_->capacity()) continue;
      total += shard->file.size;
      shard->fill.store(true, std::memory_order_relaxed);
      AskFill(*shard);
    }
  }

 private:
  struct Shard {
    store::FileEntry file;
    bool has_experts = false;
    std::atomic<bool> fill{false};      // its copy is wanted (FillExpertShards)
    std::atomic<int64_t> asked_ns{-1};  // when Fill was last called (steady clock)
  };
  struct Where {
    Shard* shard;
    uint64_t offset;
  };

  void AskFill(Shard& shard) {
    const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    int64_t last = shard.asked_ns.load(std::memory_order_relaxed);
    if (last >= 0 && now - last < std::chrono::nanoseconds(kRefillInterval).count()) return;
    if (!shard.asked_ns.compare_exchange_strong(last, now)) return;  // another thread asks
    raw_->Fill(shard.file);
  }

  store::Store* st_;
  GitOid commit_;
  RawCache* raw_;
  std::shared_ptr<TensorReadStats> stats_;
  std::vector<runtime::TensorDesc> descs_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::unordered_map<std::string, Where> where_;
};

}  // namespace

Result<std::unique_ptr<StoreSource>> OpenStoreSource(store::Store* st, const GitOid& commit,
                                                     StoreSourceOptions options) {
  auto src = std::make_unique<StoreSourceImpl>(st, commit, std::move(options));
  RETURN_IF_ERROR(src->Init());
  return std::unique_ptr<StoreSource>(std::move(src));
}

}  // namespace hubnode::hub
