#include "base/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace hubnode {

Status ErrnoStatus(std::string_view what, const std::string& path, int err) {
  std::string m = std::string(what) + " " + path + ": " + std::strerror(err);
  switch (err) {
    case ENOENT: return NotFoundError(m);
    case EACCES:
    case EPERM: return PermissionDeniedError(m);
    case ENOSPC: return ResourceExhaustedError(m);
    default: return Status(StatusCode::kInternal, m);
  }
}

Result<ReadFile> ReadFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open", path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return ErrnoStatus("cannot stat", path, e);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgumentError("not a regular file: " + path);
  }
  return ReadFile(fd, static_cast<uint64_t>(st.st_size), path);
}

ReadFile& ReadFile::operator=(ReadFile&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    size_ = o.size_;
    path_ = std::move(o.path_);
    o.fd_ = -1;
  }
  return *this;
}

ReadFile::~ReadFile() {
  if (fd_ >= 0) ::close(fd_);
}

Status ReadFile::ReadAt(uint64_t offset, size_t n, char* out) const {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd_, out + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("cannot read", path_, errno);
    }
    if (r == 0) return DataLossError("file shrank while reading: " + path_);
    done += static_cast<size_t>(r);
  }
  return OkStatus();
}

Result<std::string> ReadFileToString(const std::string& path, uint64_t max_size) {
  ASSIGN_OR_RETURN(ReadFile f, ReadFile::Open(path));
  if (f.size() > max_size) {
    return ResourceExhaustedError(path + " is " + std::to_string(f.size()) + " bytes, over the limit of " +
                                  std::to_string(max_size));
  }
  std::string out(f.size(), '\0');
  RETURN_IF_ERROR(f.ReadAt(0, out.size(), out.data()));
  return out;
}

Status WriteFileAtomic(const std::string& path, std::string_view data) {
  // Unique per process and call: threads writing the same file must not share a temporary.
  static std::atomic<uint64_t> counter{0};
  std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("cannot create", tmp, errno);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t w = ::write(fd, data.data() + done, data.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return ErrnoStatus("cannot write", tmp, e);
    }
    done += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus("cannot sync", tmp, e);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus("cannot rename to", path, e);
  }
  return OkStatus();
}

}  // namespace hubnode
