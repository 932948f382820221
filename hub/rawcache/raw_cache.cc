#include "hub/rawcache/raw_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <vector>

#include "base/file.h"
#include "base/log.h"

namespace hubnode::hub {

namespace fs = std::filesystem;

namespace {
constexpr size_t kMaxQueued = 64;  // files waiting to be written
}  // namespace

RawCache::Entry::~Entry() {
  if (fd >= 0) ::close(fd);
}

RawCache::RawCache(RawCacheOptions options, store::Store* store)
    : options_(std::move(options)), store_(store) {
  std::error_code ec;
  fs::create_directories(options_.dir, ec);
  // Keep what an earlier run cached (oldest first out); drop temporaries and strangers.
  std::vector<std::pair<fs::file_time_type, std::pair<Sha256Digest, uint64_t>>> found;
  for (const auto& e : fs::directory_iterator(options_.dir, ec)) {
    auto digest = Sha256Digest::FromHex(e.path().filename().string());
    std::error_code sec;
    if (!digest.ok() || !e.is_regular_file(sec)) {
      fs::remove(e.path(), sec);
      continue;
    }
    found.push_back({e.last_write_time(sec), {*digest, static_cast<uint64_t>(e.file_size(sec))}});
  }
  // Newest first: the most recently cached are kept and re-hashed first.
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [t, entry] : found) {
    lru_.push_back(entry.first);
    items_[entry.first] = Item{entry.second, std::prev(lru_.end()), false};
    bytes_ += entry.second;
  }
  EvictFor(0);  // the capacity may be smaller than last time
  if (options_.verify_all_at_start) verify_.assign(lru_.begin(), lru_.end());
  worker_ = std::thread([this] { Run(); });
}

RawCache::~RawCache() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

std::string RawCache::PathOf(const Sha256Digest& sha256) const {
  return options_.dir + "/" + sha256.hex();
}

uint64_t RawCache::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

bool RawCache::Stopping() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stop_;
}

std::shared_ptr<RawCache::Entry> RawCache::Open(const Sha256Digest& sha256, uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = items_.find(sha256);
  if (it == items_.end() || it->second.size != size) return nullptr;
  if (!it->second.verified) {
    RequestVerify(sha256);
    return nullptr;
  }
  int fd = ::open(PathOf(sha256).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    Drop(it);
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, it->second.pos);  // most recently used
  auto e = std::make_shared<Entry>();
  e->fd = fd;
  e->size = size;
  return e;
}

void RawCache::Fill(const store::FileEntry& file) {
  if (file.size < options_.min_size || file.size > options_.capacity) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = items_.find(file.sha256); it != items_.end()) {
    if (!it->second.verified) {  // an old copy: re-hashed first, written again if it fails
      refill_[file.sha256] = file;
      RequestVerify(file.sha256);
    }
    return;
  }
  if (queued_.count(file.sha256) || queue_.size() >= kMaxQueued) return;
  queued_[file.sha256] = true;
  queue_.push_back(file);
  cv_.notify_all();
}

void RawCache::Discard(const Sha256Digest& sha256) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = items_.find(sha256);
  if (it == items_.end()) return;
  LOG(Warning) << "raw cache: " << PathOf(sha256) << " was changed on disk; removed";
  Drop(it);
  std::error_code ec;
  fs::remove(PathOf(sha256), ec);
}

void RawCache::RequestVerify(const Sha256Digest& sha256) {
  if (verifying_ == sha256 || (!verify_.empty() && verify_.front() == sha256)) return;
  verify_.erase(std::remove(verify_.begin(), verify_.end(), sha256), verify_.end());
  verify_.push_front(sha256);
  cv_.notify_all();
}

void RawCache::Drop(std::map<Sha256Digest, Item>::iterator it) {
  lru_.erase(it->second.pos);
  bytes_ -= it->second.size;
  items_.erase(it);
}

void RawCache::EvictFor(uint64_t incoming) {
  while (!lru_.empty() && bytes_ + incoming > options_.capacity) {
    const Sha256Digest victim = lru_.back();
    auto it = items_.find(victim);
    if (it == items_.end()) {
      lru_.pop_back();
      continue;
    }
    Drop(it);
    std::error_code ec;
    fs::remove(PathOf(victim), ec);  // open readers keep their file
  }
}

// A copy left by an earlier run is served again only once its bytes hash to its name.
void RawCache::Verify(const Sha256Digest& sha256) {
  const std::string path = PathOf(sha256);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  bool good = fd >= 0, stopped = false;
  if (good) {
    Sha256 sha;
    std::string buf(1 << 20, '\0');
    ssize_t n;
    while ((n = ::read(fd, buf.data(), buf.size())) > 0) {
      if (Stopping()) {
        stopped = true;
        break;
      }
      sha.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
    }
    ::close(fd);
    good = n == 0 && sha.Finish() == sha256;
  }
  if (stopped) return;  // re-hashed at the next start
  std::lock_guard<std::mutex> lock(mu_);
  auto it = items_.find(sha256);
  if (it == items_.end()) return;  // evicted meanwhile
  if (good) {
    it->second.verified = true;
    refill_.erase(sha256);
    return;
  }
  LOG(Warning) << "raw cache: " << path << " does not match its name; removed";
  Drop(it);
  std::error_code ec;
  fs::remove(path, ec);
  if (auto r = refill_.find(sha256); r != refill_.end()) {
    if (!queued_.count(sha256)) {
      queued_[sha256] = true;
      queue_.push_back(r->second);
    }
    refill_.erase(r);
  }
}

void RawCache::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !verify_.empty() || !queue_.empty(); });
    if (stop_) return;
    if (!verify_.empty()) {  // re-hashes first: an old copy is cheaper to check than to write
      const Sha256Digest sha256 = verify_.front();
      verify_.pop_front();
      auto it = items_.find(sha256);
      if (it == items_.end() || it->second.verified) continue;
      verifying_ = sha256;
      lock.unlock();
      Verify(sha256);
      lock.lock();
      verifying_.reset();
      continue;
    }
    store::FileEntry file = queue_.front();
    queue_.pop_front();
    lock.unlock();
    Status s = Write(file);
    if (!s.ok() && s.code() != StatusCode::kCancelled) {
      LOG(Warning) << "raw cache: " << file.path << ": " << s.ToString();
    }
    lock.lock();
    queued_.erase(file.sha256);
  }
}

Status RawCache::Write(const store::FileEntry& file) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (items_.count(file.sha256)) return OkStatus();
  }
  // Only what is held here: a fill must not pull a partly held file from the peers.
  ASSIGN_OR_RETURN(auto chunks, store_->ListChunks(file));
  std::vector<ChunkId> ids;
  for (const auto& c : chunks) ids.push_back(c.id);
  ASSIGN_OR_RETURN(std::vector<bool> held, store_->HasChunks(ids));
  if (std::find(held.begin(), held.end(), false) != held.end()) return OkStatus();
  ASSIGN_OR_RETURN(auto reader, store_->OpenFile(file));
  const std::string tmp = PathOf(file.sha256) + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("cannot create", tmp, errno);
  Sha256 sha;
  Status s = reader->Read(0, file.size, [&](std::string_view piece) -> Status {
    // A large file takes seconds: a closing cache (the end of a `hubnode run`) does not wait.
    if (Stopping()) return CancelledError("the raw cache is closing");
    sha.Update(piece);
    while (!piece.empty()) {
      ssize_t w = ::write(fd, piece.data(), piece.size());
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return ErrnoStatus("cannot write", tmp, errno);
      piece.remove_prefix(static_cast<size_t>(w));
    }
    return OkStatus();
  });
  if (::close(fd) != 0 && s.ok()) s = ErrnoStatus("cannot close", tmp, errno);
  std::error_code ec;
  if (s.ok() && sha.Finish() != file.sha256)
    s = DataLossError("the cached copy does not match its SHA-256");
  if (!s.ok()) {
    fs::remove(tmp, ec);
    return s;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (items_.count(file.sha256)) {
    fs::remove(tmp, ec);
    return OkStatus();
  }
  EvictFor(file.size);
  fs::rename(tmp, PathOf(file.sha256), ec);
  if (ec) {
    fs::remove(tmp, ec);
    return InternalError("cannot keep the cached copy of " + file.path + ": " + ec.message());
  }
  lru_.push_front(file.sha256);
  items_[file.sha256] = Item{file.size, lru_.begin(), true};
  bytes_ += file.size;
  return OkStatus();
}

}  // namespace hubnode::hub
