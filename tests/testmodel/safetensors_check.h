// Test helpers for the testmodel tests: a temporary directory, whole-file reads, and a
// safetensors checker written from the format description (runtime.md 1.1), independent of the
// library's own reader, so a bug shared by writer and reader cannot hide.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace hubnode::testmodel::testing {

// A fresh directory under the system temp dir, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // path()/name (not created).
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string ReadAll(const std::string& path);
// Plain file names directly in dir, sorted.
std::vector<std::string> FileNames(const std::string& dir);

struct CheckedTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // absolute file offsets
  uint64_t end = 0;
};

struct CheckedShard {
  std::map<std::string, CheckedTensor> tensors;
  uint64_t data_start = 0;
};

// Checks `bytes` is a valid safetensors file as the spec and our writer promise: u64 LE header
// length, JSON object header padded with spaces to a multiple of 8, "__metadata__" {"format":
// "pt"}, known dtypes, sizes equal shape x dtype, tensors tiling the data section in name order
// to the end of the file.
::testing::AssertionResult CheckSafetensors(const std::string& bytes, CheckedShard* out);

// Decodes a tensor's elements to float (BF16, F16 or F32).
std::vector<float> DecodeTensor(const std::string& bytes, const CheckedTensor& t);

}  // namespace hubnode::testmodel::testing
