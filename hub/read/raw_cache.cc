#include "hub/read/raw_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "base/log.h"

namespace hubnode::hub {

namespace fs = std::filesystem;

RawCache::Entry::~Entry() {
  if (fd >= 0) ::close(fd);
}

RawCache::RawCache(std::string dir, uint64_t capacity, uint64_t min_size, store::Store* store)
    : dir_(std::move(dir)), capacity_(capacity), min_size_(min_size), store_(store) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  // Keep what an earlier run cached (oldest first out); drop temporaries and strangers.
  std::vector<std::pair<fs::file_time_type, std::pair<Sha256Digest, uint64_t>>> found;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    auto digest = Sha256Digest::FromHex(e.path().filename().string());
    std::error_code sec;
    if (!digest.ok() || !e.is_regular_file(sec)) {
      fs::remove(e.path(), sec);
      continue;
    }
    found.push_back({e.last_write_time(sec), {*digest, static_cast<uint64_t>(e.file_size(sec))}});
  }
  // Newest first: they are checked (re-hashed) before they are served again, by the worker.
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (const auto& [t, entry] : found) verify_.push_back(entry);
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

std::string RawCache::PathOf(const Sha256Digest& sha256) const { return dir_ + "/" + sha256.hex(); }

uint64_t RawCache::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

std::shared_ptr<RawCache::Entry> RawCache::Open(const Sha256Digest& sha256, uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = items_.find(sha256);
  if (it == items_.end() || it->second.size != size) return nullptr;
  int fd = ::open(PathOf(sha256).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    lru_.erase(it->second.pos);
    bytes_ -= it->second.size;
    items_.erase(it);
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, it->second.pos);  // most recently used
  auto e = std::make_shared<Entry>();
  e->fd = fd;
  e->size = size;
  return e;
}

void RawCache::Fill(const store::FileEntry& file) {
  if (file.size < min_size_ || file.size > capacity_) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (items_.count(file.sha256) || queued_.count(file.sha256) || queue_.size() >= 64) return;
  queued_[file.sha256] = true;
  queue_.push_back(file);
  cv_.notify_all();
}

void RawCache::EvictFor(uint64_t incoming) {
  while (!lru_.empty() && bytes_ + incoming > capacity_) {
    Sha256Digest victim = lru_.back();
    lru_.pop_back();
    auto it = items_.find(victim);
    if (it == items_.end()) continue;
    bytes_ -= it->second.size;
    items_.erase(it);
    std::error_code ec;
    fs::remove(PathOf(victim), ec);  // open readers keep their file
  }
}

// An entry left by an earlier run is served again only once its bytes hash to its name.
void RawCache::Admit(const Sha256Digest& sha256, uint64_t size) {
  const std::string path = PathOf(sha256);
  std::error_code ec;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  bool good = fd >= 0;
  if (good) {
    Sha256 sha;
    std::string buf(1 << 20, '\0');
    for (ssize_t n; (n = ::read(fd, buf.data(), buf.size())) > 0;) sha.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
    ::close(fd);
    good = sha.Finish() == sha256;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!good || items_.count(sha256)) {
    if (!good) LOG(Warning) << "raw cache: " << path << " does not match its name; removed";
    if (!items_.count(sha256)) fs::remove(path, ec);
    return;
  }
  EvictFor(size);
  lru_.push_back(sha256);  // older than anything cached since the start
  items_[sha256] = Item{size, std::prev(lru_.end())};
  bytes_ += size;
}

void RawCache::Run() {
  for (const auto& [sha256, size] : verify_) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
    }
    Admit(sha256, size);
  }
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    store::FileEntry file = queue_.front();
    queue_.pop_front();
    lock.unlock();
    Status s = Write(file);
    if (!s.ok()) LOG(Warning) << "raw cache: " << file.path << ": " << s.ToString();
    lock.lock();
    queued_.erase(file.sha256);
  }
}

Status RawCache::Write(const store::FileEntry& file) {
  // Only what is held here: a fill must not pull a partly held file from the peers.
  ASSIGN_OR_RETURN(auto chunks, store_->ListChunks(file));
  std::vector<ChunkId> ids;
  for (const auto& c : chunks) ids.push_back(c.id);
  ASSIGN_OR_RETURN(std::vector<bool> held, store_->HasChunks(ids));
  if (std::find(held.begin(), held.end(), false) != held.end()) return OkStatus();
  ASSIGN_OR_RETURN(auto reader, store_->OpenFile(file));
  const std::string tmp = PathOf(file.sha256) + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return InternalError("cannot create " + tmp);
  Sha256 sha;
  Status s = reader->Read(0, file.size, [&](std::string_view piece) -> Status {
    sha.Update(piece);
    while (!piece.empty()) {
      ssize_t w = ::write(fd, piece.data(), piece.size());
      if (w < 0) return InternalError("cannot write " + tmp);
      piece.remove_prefix(static_cast<size_t>(w));
    }
    return OkStatus();
  });
  ::close(fd);
  std::error_code ec;
  if (s.ok() && sha.Finish() != file.sha256) s = DataLossError("the cached copy does not match its SHA-256");
  if (!s.ok()) {
    fs::remove(tmp, ec);
    return s;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (items_.count(file.sha256)) {  // admitted meanwhile (a copy of an earlier run, re-hashed)
    fs::remove(tmp, ec);
    return OkStatus();
  }
  EvictFor(file.size);
  fs::rename(tmp, PathOf(file.sha256), ec);
  if (ec) {
    fs::remove(tmp, ec);
    return InternalError("cannot keep the cached copy");
  }
  lru_.push_front(file.sha256);
  items_[file.sha256] = Item{file.size, lru_.begin()};
  bytes_ += file.size;
  return OkStatus();
}

}  // namespace hubnode::hub
