// An expert index as comparable values, parts sorted (an import's part order within a key follows
// the order it read the files in). Shared by the store tests.
#pragma once

#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "store/store.h"

namespace hubnode::store {

using FlatIndex = std::map<std::pair<uint32_t, uint32_t>, std::vector<std::tuple<std::string, std::string, uint64_t, uint64_t>>>;

inline FlatIndex Flatten(const ExpertIndex& idx) {
  FlatIndex out;
  for (const auto& [k, parts] : idx) {
    auto& v = out[{k.layer, k.expert}];
    for (const auto& p : parts) v.emplace_back(p.path, p.tensor, p.offset, p.length);
    std::sort(v.begin(), v.end());
  }
  return out;
}

}  // namespace hubnode::store
