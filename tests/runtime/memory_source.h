// A checkpoint in memory for the runtime's unit tests: tensors by name with their bytes, reads
// counted, one name that can be made to fail (DataLoss, as a corrupt chunk would).
#pragma once

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/runtime.h"

namespace hubnode::runtime::testing {

class MemorySource : public TensorSource {
 public:
  // Replaces any tensor of that name. `bytes` must be desc.bytes() long.
  void Put(const std::string& name, DType dtype, std::vector<int64_t> shape, std::vector<uint8_t> bytes) {
    std::lock_guard lock(*mu_);
    data_[name] = {TensorDesc{name, dtype, std::move(shape)}, std::move(bytes)};
  }
  void Remove(const std::string& name) {
    std::lock_guard lock(*mu_);
    data_.erase(name);
  }
  std::vector<uint8_t>& Bytes(const std::string& name) { return data_.at(name).second; }
  void Fail(const std::string& name) {
    std::lock_guard lock(*mu_);
    failing_ = name;
  }
  int reads() const {
    std::lock_guard lock(*mu_);
    return reads_;
  }

  Result<std::string> ReadFile(std::string_view) override { return NotFoundError("no files"); }
  Result<std::vector<TensorDesc>> ListTensors() override {
    std::lock_guard lock(*mu_);
    std::vector<TensorDesc> out;
    for (const auto& [name, t] : data_) out.push_back(t.first);
    return out;
  }
  Status ReadTensor(std::string_view name, std::span<uint8_t> out) override {
    std::lock_guard lock(*mu_);
    ++reads_;
    if (name == failing_) return DataLossError("corrupt chunk");
    auto it = data_.find(std::string(name));
    if (it == data_.end()) return NotFoundError("no tensor");
    if (out.size() != it->second.second.size()) return InvalidArgumentError("read of the wrong size");
    std::memcpy(out.data(), it->second.second.data(), out.size());
    return OkStatus();
  }

 private:
  std::map<std::string, std::pair<TensorDesc, std::vector<uint8_t>>> data_;
  std::string failing_;
  // Shared by copies (tests pass sources around by value).
  std::shared_ptr<std::mutex> mu_ = std::make_shared<std::mutex>();
  int reads_ = 0;
};

}  // namespace hubnode::runtime::testing
