// Output helpers: the empty-or-new output directory check and a sequential file writer.
//
// Thread safety: an OutFile is used by one thread at a time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace hubnode::testmodel {

// A new file written front to back. Movable; the destructor closes without reporting, so call
// Close() to learn about write-back errors.
class OutFile {
 public:
  // Creates `path`; AlreadyExists when it exists.
  static Result<OutFile> Create(const std::string& path);
  OutFile(OutFile&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  OutFile& operator=(OutFile&&) = delete;
  OutFile(const OutFile&) = delete;
  ~OutFile();

  Status Append(std::string_view data);
  Status Close();

 private:
  OutFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

// Creates `dir` (and its parents) if missing. AlreadyExists when it exists and is not an empty
// directory.
Status PrepareOutDir(const std::string& dir);

// Writes `data` as the new file dir/name.
Status WriteNewFile(const std::string& dir, std::string_view name, std::string_view data);

// Copies the file `from` to the new file `to`, 4 MiB at a time.
Status CopyFile(const std::string& from, const std::string& to);

// The plain files directly in `dir`, sorted by name. NotFound when dir is missing.
Result<std::vector<std::string>> ListFiles(const std::string& dir);

// Sum of the sizes of dir/name for every name.
Result<uint64_t> TotalSize(const std::string& dir, const std::vector<std::string>& names);

std::string JoinPath(std::string_view dir, std::string_view name);

}  // namespace hubnode::testmodel
