#include "testmodel/output.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <system_error>

#include "base/file.h"

namespace hubnode::testmodel {

namespace fs = std::filesystem;

Result<OutFile> OutFile::Create(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == EEXIST) return AlreadyExistsError("file exists: " + path);
    return ErrnoStatus("cannot create", path, errno);
  }
  return OutFile(fd, path);
}

OutFile::~OutFile() {
  if (fd_ >= 0) ::close(fd_);
}

Status OutFile::Append(std::string_view data) {
  if (fd_ < 0) return FailedPreconditionError("write after close: " + path_);
  while (!data.empty()) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("cannot write", path_, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return OkStatus();
}

Status OutFile::Close() {
  if (fd_ < 0) return OkStatus();
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) return ErrnoStatus("cannot close", path_, errno);
  return OkStatus();
}

Status PrepareOutDir(const std::string& dir) {
  std::error_code ec;
  fs::file_status st = fs::status(dir, ec);
  if (fs::exists(st)) {
    if (!fs::is_directory(st))
      return AlreadyExistsError("output path exists and is a file: " + dir);
    if (!fs::is_empty(dir, ec) || ec) {
      return AlreadyExistsError("output directory is not empty: " + dir);
    }
    return OkStatus();
  }
  fs::create_directories(dir, ec);
  if (ec) return ErrnoStatus("cannot create directory", dir, ec.value());
  return OkStatus();
}

Status WriteNewFile(const std::string& dir, std::string_view name, std::string_view data) {
  ASSIGN_OR_RETURN(OutFile f, OutFile::Create(JoinPath(dir, name)));
  RETURN_IF_ERROR(f.Append(data));
  return f.Close();
}

Status CopyFile(const std::string& from, const std::string& to) {
  constexpr uint64_t kPiece = uint64_t{4} << 20;
  ASSIGN_OR_RETURN(ReadFile in, ReadFile::Open(from));
  ASSIGN_OR_RETURN(OutFile out, OutFile::Create(to));
  std::string buf;
  for (uint64_t off = 0; off < in.size(); off += kPiece) {
    buf.resize(std::min(kPiece, in.size() - off));
    RETURN_IF_ERROR(in.ReadAt(off, buf.size(), buf.data()));
    RETURN_IF_ERROR(out.Append(buf));
  }
  return out.Close();
}

Result<std::vector<std::string>> ListFiles(const std::string& dir) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return ErrnoStatus("cannot list", dir, ec.value());
  std::vector<std::string> names;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) names.push_back(it->path().filename().string());
  }
  if (ec) return ErrnoStatus("cannot list", dir, ec.value());
  std::sort(names.begin(), names.end());
  return names;
}

Result<uint64_t> TotalSize(const std::string& dir, const std::vector<std::string>& names) {
  uint64_t total = 0;
  for (const std::string& name : names) {
    const std::string path = JoinPath(dir, name);
    std::error_code ec;
    const uintmax_t size = fs::file_size(path, ec);
    if (ec) return ErrnoStatus("cannot stat", path, ec.value());
    total += size;
  }
  return total;
}

std::string JoinPath(std::string_view dir, std::string_view name) {
  std::string out(dir);
  if (!out.empty() && out.back() != '/') out.push_back('/');
  out += name;
  return out;
}

}  // namespace hubnode::testmodel
