#include "store/expert_index.h"

#include <charconv>
#include <string>

namespace hubnode::store {
namespace {

// Parses a decimal number at the front of s (no sign, no leading '+'), followed by '.'.
std::optional<uint32_t> TakeNumber(std::string_view& s) {
  size_t n = 0;
  while (n < s.size() && s[n] >= '0' && s[n] <= '9') ++n;
  if (n == 0 || n > 9 || n >= s.size() || s[n] != '.') return std::nullopt;
  uint32_t v = 0;
  std::from_chars(s.data(), s.data() + n, v);
  s.remove_prefix(n + 1);
  return v;
}

bool TakePrefix(std::string_view& s, std::string_view p) {
  if (s.substr(0, p.size()) != p) return false;
  s.remove_prefix(p.size());
  return true;
}

// Finds "layers.L." at the start or after a '.', returns L and leaves s after it.
std::optional<uint32_t> TakeLayer(std::string_view& s) {
  for (size_t pos = 0; (pos = s.find("layers.", pos)) != std::string_view::npos; pos += 7) {
    if (pos != 0 && s[pos - 1] != '.') continue;
    std::string_view rest = s.substr(pos + 7);
    if (auto l = TakeNumber(rest)) {
      s = rest;
      return l;
    }
  }
  return std::nullopt;
}

// After the layer: "block_sparse_moe.experts." or "mlp.experts.".
bool TakeExperts(std::string_view& s) {
  return TakePrefix(s, "block_sparse_moe.experts.") || TakePrefix(s, "mlp.experts.");
}

}  // namespace

std::optional<ExpertMatch> MatchExpertTensor(std::string_view name) {
  std::string_view s = name;
  auto layer = TakeLayer(s);
  if (!layer) return std::nullopt;
  std::string_view t = s;
  if (TakeExperts(t)) {
    if (auto e = TakeNumber(t); e && !t.empty()) return ExpertMatch{*layer, *e};
    return std::nullopt;
  }
  t = s;
  if ((TakePrefix(t, "mlp.shared_experts.") || TakePrefix(t, "mlp.shared_expert.")) && !t.empty()) {
    return ExpertMatch{*layer, kSharedExpert};
  }
  return std::nullopt;
}

std::optional<uint32_t> MatchPackedExpertLayer(std::string_view name) {
  std::string_view s = name;
  auto layer = TakeLayer(s);
  if (!layer || !TakeExperts(s) || s.empty()) return std::nullopt;
  if (s[0] >= '0' && s[0] <= '9') return std::nullopt;  // a per-expert tensor
  return layer;
}

uint64_t PackedExpertCount(const SafetensorsTensor& t) {
  if (t.shape.size() < 2 || t.shape[0] < 2) return 0;
  if (!MatchPackedExpertLayer(t.name)) return 0;
  uint64_t span = t.end - t.begin;
  return span % t.shape[0] == 0 ? t.shape[0] : 0;
}

void AddExpertParts(const std::string& path, const std::vector<TensorInfo>& tensors, ExpertIndex* index) {
  for (const auto& t : tensors) {
    if (auto m = MatchExpertTensor(t.name)) {
      (*index)[ExpertKey{m->layer, m->expert}].push_back(ExpertPart{path, t.name, t.begin, t.end - t.begin});
      continue;
    }
    SafetensorsTensor st{t.name, t.dtype, t.shape, t.begin, t.end};
    uint64_t experts = PackedExpertCount(st);
    if (experts == 0) continue;
    uint32_t layer = *MatchPackedExpertLayer(t.name);
    uint64_t slice = (t.end - t.begin) / experts;
    for (uint64_t e = 0; e < experts; ++e) {
      (*index)[ExpertKey{layer, static_cast<uint32_t>(e)}].push_back(
          ExpertPart{path, t.name, t.begin + e * slice, slice});
    }
  }
}

}  // namespace hubnode::store
