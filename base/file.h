// Small POSIX file helpers that report errors as Status (with the path and errno text).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace hubnode {

// A read-only file for positional reads. Movable, closes on destruction.
class ReadFile {
 public:
  static Result<ReadFile> Open(const std::string& path);
  ReadFile(ReadFile&& o) noexcept : fd_(o.fd_), size_(o.size_), path_(std::move(o.path_)) { o.fd_ = -1; }
  ReadFile& operator=(ReadFile&& o) noexcept;
  ReadFile(const ReadFile&) = delete;
  ~ReadFile();

  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Reads exactly n bytes at offset into out. DataLoss if the file is shorter (it changed).
  Status ReadAt(uint64_t offset, size_t n, char* out) const;

 private:
  ReadFile(int fd, uint64_t size, std::string path) : fd_(fd), size_(size), path_(std::move(path)) {}
  int fd_;
  uint64_t size_;
  std::string path_;
};

// Reads a whole file; ResourceExhausted when it is larger than max_size.
Result<std::string> ReadFileToString(const std::string& path, uint64_t max_size);

// Writes `data` to path via a temporary file, fsync and rename (readers see old or new).
Status WriteFileAtomic(const std::string& path, std::string_view data);

// An errno-based Status: "what path: strerror(errno)".
Status ErrnoStatus(std::string_view what, const std::string& path, int err);

}  // namespace hubnode
