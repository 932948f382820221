// Random-access file reads from chunks, and export of a commit to a directory.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <deque>
#include <filesystem>
#include <future>

#include "base/file.h"
#include "base/log.h"
#include "store/codec.h"
#include "store/safetensors.h"
#include "store/store_impl.h"
#include "store/tier.h"

namespace hubnode::store {
namespace {

namespace fs = std::filesystem;

// Chunks read ahead at once when they come from the object store, and the most read with one
// ranged GET when they lie close together in a pack: 8 chunks (~8 MiB) per stream in memory.
constexpr size_t kTierReadAhead = 8;
constexpr size_t kTierRun = 4;

class FileReaderImpl final : public FileReader {
 public:
  FileReaderImpl(StoreImpl& store, FileRecord record)
      : store_(store), db_(store.db()), record_(std::move(record)), source_(store.chunk_source()) {
    starts_.reserve(record_.chunks.size());
    uint64_t off = 0;
    for (const auto& c : record_.chunks) {
      starts_.push_back(off);
      off += c.raw_len;
    }
  }

  uint64_t size() const override { return record_.size; }

  Status Read(uint64_t offset, uint64_t length, const std::function<Status(std::string_view)>& sink) override {
    if (offset > record_.size || length > record_.size - offset) {
      return OutOfRangeError("range [" + std::to_string(offset) + ", +" + std::to_string(length) +
                             ") is beyond the file's " + std::to_string(record_.size) + " bytes");
    }
    if (length == 0) return OkStatus();
    size_t i = std::upper_bound(starts_.begin(), starts_.end(), offset) - starts_.begin() - 1;
    uint64_t end = offset + length;
    const bool sequential = offset == last_end_;
    last_end_ = end;
    for (; i < record_.chunks.size() && starts_[i] < end; ++i) {
      RETURN_IF_ERROR(Load(i, end, sequential));
      uint64_t from = std::max(offset, starts_[i]) - starts_[i];
      uint64_t to = std::min<uint64_t>(end - starts_[i], record_.chunks[i].raw_len);
      RETURN_IF_ERROR(sink(std::string_view(cached_).substr(from, to - from)));
    }
    return OkStatus();
  }

 private:
  Result<std::string> Fetch(size_t i) const {
    const ChunkRef& ref = record_.chunks[i];
    // Without RocksDB's CRC32C (computed in software by Debian's librocksdb: 17% of the CPU of
    // expert reloads): the bytes are hashed against the chunk's id below, which catches what the
    // CRC would, and a record that is not a chunk any more fails to decode as a hostile peer's
    // would (docs/decisions.md 46). Damage an I/O error reports is handled as a chunk that does
    // not decode.
    auto got = db_.GetUnchecked(Cf::kChunks, ref.id.view());
    const bool damaged = !got.ok() && got.status().code() == StatusCode::kDataLoss;
    if (!got.ok() && !damaged) return got.status();
    std::optional<std::string> rec = damaged ? std::optional<std::string>(std::string()) : std::move(*got);
    if (!rec) {
      // A tiered chunk: its record comes from its pack in the object store, checked and cached.
      ASSIGN_OR_RETURN(auto tiered, store_.FetchTiered(ref.id));
      if (tiered) {
        if (tiered->raw.size() != ref.raw_len) return DataLossError("chunk " + ref.id.hex() + " has the wrong length");
        return std::move(tiered->raw);
      }
      // A partly held file: the chunk comes from the chunk source (peers), checked and kept.
      if (!source_) return UnavailableError("chunk " + ref.id.hex() + " is not held by this node");
      ASSIGN_OR_RETURN(std::string raw, (*source_)(ref.id, ref.raw_len));
      if (raw.size() != ref.raw_len || ChunkIdOf(raw) != ref.id) {
        return DataLossError("chunk " + ref.id.hex() + " from the chunk source does not match its id");
      }
      RETURN_IF_ERROR(store_.PutChunk(ref.id, raw, HintAt(i)));
      return raw;
    }
    // Every chunk read is checked against its id: a record damaged on disk is never served. With
    // a chunk source (peers), a damaged chunk is fetched again, checked and stored over it.
    if (store_.tier()) store_.tier_cache().Touch(ref.id);
    auto raw = damaged ? Result<std::string>(DataLossError("unreadable")) : DecodeOwnedChunk(std::move(*rec));
    if (raw.ok() && raw->size() == ref.raw_len && ChunkIdOf(*raw) == ref.id) return raw;
    if (source_) {
      auto fresh = (*source_)(ref.id, ref.raw_len);
      if (fresh.ok() && fresh->size() == ref.raw_len && ChunkIdOf(*fresh) == ref.id) {
        LOG(Warning) << "chunk " << ref.id.hex() << " was damaged on disk; replaced by a verified copy from a peer";
        RETURN_IF_ERROR(store_.ReplaceChunk(ref.id, *fresh, HintAt(i)));
        return fresh;
      }
    }
    return DataLossError("chunk " + ref.id.hex() + " is damaged on disk (hubnode fsck --repair --peer URL replaces it)");
  }

  // Whether to read chunk n ahead (of a read ending at `end`): when the range asked for reaches
  // it, or when reads are sequential (a download) and it is held here (or in the chunk tier). A
  // missing chunk beyond the range is never fetched ahead: a tensor or expert read must not pull
  // the next expert's chunk from the peers.
  bool WantAhead(size_t n, uint64_t end, bool sequential) const {
    if (n >= record_.chunks.size()) return false;
    if (starts_[n] < end) return true;
    if (!sequential) return false;
    if (!source_) return true;
    auto held = db_.Has(Cf::kChunkMeta, record_.chunks[n].id.view());
    return held.ok() && *held;
  }

  Status Load(size_t i, uint64_t end, bool sequential) {
    if (cached_index_ == i) return OkStatus();
    // Chunks read ahead that the reader skipped past are waited for and dropped.
    while (!ahead_.empty() && ahead_.front().first != i) {
      ahead_.front().second.wait();
      ahead_.pop_front();
    }
    Result<std::string> raw = InternalError("unset");
    if (!ahead_.empty()) {
      raw = ahead_.front().second.get();
      ahead_.pop_front();
    } else {
      raw = Fetch(i);
    }
    RETURN_IF_ERROR(raw.status());
    cached_ = std::move(*raw);
    cached_index_ = i;
    // Read ahead: the next chunks are read and decoded on other threads while the caller consumes
    // (sends) this one. One chunk ahead from local disk; with the chunk tier, where each chunk is
    // a round trip to the object store, kTierReadAhead of them in flight at once.
    const size_t depth = store_.tier() ? kTierReadAhead : 1;
    while (!tasks_.empty() && tasks_.front().wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
      tasks_.pop_front();
    }
    size_t n = ahead_.empty() ? i + 1 : ahead_.back().first + 1;
    while (ahead_.size() < depth && WantAhead(n, end, sequential)) {
      // A tiered chunk waits until a whole run fits.
      if (!ahead_.empty() && depth - ahead_.size() < kTierRun && Tiered(n)) break;
      // Tiered chunks close together in a pack (an import writes a file's chunks nearly in
      // order) go as one ranged GET of up to kTierRun chunks.
      size_t g = 1;
      while (store_.tier() && g < kTierRun && ahead_.size() + g < depth && WantAhead(n + g, end, sequential) &&
             Tiered(n) && Tiered(n + g)) {
        ++g;
      }
      if (g == 1) {
        ahead_.emplace_back(n, std::async(std::launch::async, [this, n] { return Fetch(n); }));
      } else {
        auto promises = std::make_shared<std::vector<std::promise<Result<std::string>>>>(g);
        for (size_t k = 0; k < g; ++k) ahead_.emplace_back(n + k, (*promises)[k].get_future());
        tasks_.push_back(std::async(std::launch::async, [this, n, g, promises] { FetchRun(n, g, *promises); }));
      }
      n += g;
    }
    return OkStatus();
  }

  // Whether chunk n is in the chunk tier and not cached here.
  bool Tiered(size_t n) const {
    const ChunkId& id = record_.chunks[n].id;
    if (store_.tier_cache().Contains(id)) return false;
    auto loc = db_.Has(Cf::kDefault, TierLocKey(id));
    return loc.ok() && *loc;
  }

  // Chunks [n, n+g) with one ranged GET, or one by one when they are not close in one pack.
  void FetchRun(size_t n, size_t g, std::vector<std::promise<Result<std::string>>>& out) const {
    std::vector<ChunkId> ids;
    for (size_t k = 0; k < g; ++k) ids.push_back(record_.chunks[n + k].id);
    auto run = store_.FetchTieredRun(ids);
    for (size_t k = 0; k < g; ++k) {
      if (run.ok() && (*run)[k].size() == record_.chunks[n + k].raw_len) {
        out[k].set_value(std::move((*run)[k]));
      } else if (!run.ok() && run.status().code() == StatusCode::kUnavailable) {
        out[k].set_value(run.status());
      } else {
        out[k].set_value(Fetch(n + k));
      }
    }
  }

  // bf16/fp16/fp32 tensor data is stored by byte planes.
  ElementKindHint HintAt(size_t i) const {
    uint64_t begin = starts_[i];
    for (const auto& t : record_.tensors) {
      if (begin >= t.begin && begin < t.end) return ElementKindForDtype(t.dtype);
    }
    return ElementKindHint::kBytes;
  }

  StoreImpl& store_;
  Db& db_;
  FileRecord record_;
  std::shared_ptr<const ChunkSource> source_;
  std::vector<uint64_t> starts_;
  std::string cached_;
  size_t cached_index_ = static_cast<size_t>(-1);
  uint64_t last_end_ = 0;  // where the previous Read ended (sequential reads read ahead)
  // Chunks being read ahead, in order.
  std::deque<std::pair<size_t, std::future<Result<std::string>>>> ahead_;
  // Runs being read (their chunks' futures are in ahead_); destroyed, and so waited for, first.
  std::deque<std::future<void>> tasks_;
};

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t w = ::write(fd, data.data(), data.size());
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("cannot write", path, errno);
    }
    data.remove_prefix(static_cast<size_t>(w));
  }
  return OkStatus();
}

}  // namespace

Result<std::unique_ptr<FileReader>> StoreImpl::OpenFile(const FileEntry& file) {
  ASSIGN_OR_RETURN(FileRecord r, GetFileRecord(file.sha256));
  if (r.size != file.size) return DataLossError("file record size disagrees with its tree entry: " + file.path);
  return std::unique_ptr<FileReader>(new FileReaderImpl(*this, std::move(r)));
}

Status StoreImpl::Export(const GitOid& commit, const std::string& dir) {
  ASSIGN_OR_RETURN(auto files, ListFiles(commit));
  std::error_code ec;
  if (fs::exists(dir, ec) && !(fs::is_directory(dir, ec) && fs::is_empty(dir, ec))) {
    return AlreadyExistsError("export target exists and is not an empty directory: " + dir);
  }
  fs::create_directories(dir, ec);
  if (ec) return InternalError("cannot create " + dir + ": " + ec.message());
  for (const auto& f : files) {
    RETURN_IF_ERROR(ValidatePath(f.path));  // never write outside `dir`
    fs::path target = fs::path(dir) / f.path;
    fs::create_directories(target.parent_path(), ec);
    if (ec) return InternalError("cannot create " + target.parent_path().string() + ": " + ec.message());
    ASSIGN_OR_RETURN(auto reader, OpenFile(f));
    std::string path = target.string();
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, f.mode == kModeExecutable ? 0755 : 0644);
    if (fd < 0) return ErrnoStatus("cannot create", path, errno);
    Sha256 sha;
    Status s = reader->Read(0, reader->size(), [&](std::string_view piece) {
      sha.Update(piece);
      return WriteAll(fd, piece, path);
    });
    if (::close(fd) != 0 && s.ok()) s = ErrnoStatus("cannot close", path, errno);
    RETURN_IF_ERROR(s);
    // The chunks were each checked by RocksDB's checksums; the whole-file digest also proves the
    // assembly (order, lengths) is the content the tree names.
    if (sha.Finish() != f.sha256) return DataLossError("exported " + f.path + " does not match its SHA-256");
  }
  return OkStatus();
}

}  // namespace hubnode::store
