#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>

namespace hubnode::runtime {

Status ValidateSamplingParams(const SamplingParams& p) {
  if (!(p.temperature >= 0 && p.temperature <= 2)) return InvalidArgumentError("temperature must be in [0, 2]");
  if (!(p.top_p > 0 && p.top_p <= 1)) return InvalidArgumentError("top_p must be in (0, 1]");
  if (p.top_k < 0) return InvalidArgumentError("top_k must be >= 0");
  if (p.max_tokens < 1) return InvalidArgumentError("max_tokens must be >= 1");
  if (p.top_logprobs < -1 || p.top_logprobs > 20) return InvalidArgumentError("top_logprobs must be in [0, 20]");
  if (p.stop.size() > 16) return InvalidArgumentError("at most 16 stop strings");
  for (const std::string& s : p.stop) {
    if (s.empty() || s.size() > 256) return InvalidArgumentError("stop strings must be 1..256 bytes");
  }
  return OkStatus();
}

Sampler::Sampler(const SamplingParams& params) : p_(params), rng_(params.seed) {}

int32_t Sampler::Sample(std::span<const float> logits) {
  const int32_t vocab = static_cast<int32_t>(logits.size());
  if (p_.temperature == 0) {
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  work_.clear();
  for (int32_t i = 0; i < vocab; ++i) work_.emplace_back(logits[i] / p_.temperature, i);
  auto higher = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  size_t keep = work_.size();
  if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < keep) {
    keep = p_.top_k;
    std::partial_sort(work_.begin(), work_.begin() + keep, work_.end(), higher);
    work_.resize(keep);
  } else {
    std::sort(work_.begin(), work_.end(), higher);
  }
  const float max_logit = work_[0].first;
  double total = 0;
  for (auto& [l, id] : work_) total += (l = std::exp(l - max_logit));
  if (p_.top_p < 1) {  // the smallest prefix whose mass reaches top_p
    double mass = 0;
    size_t n = 0;
    while (n < work_.size()) {
      mass += work_[n++].first / total;
      if (mass >= p_.top_p) break;
    }
    work_.resize(n);
    total = 0;
    for (const auto& [w, id] : work_) total += w;
  }
  const double u = std::uniform_real_distribution<double>(0.0, total)(rng_);
  double acc = 0;
  for (const auto& [w, id] : work_) {
    acc += w;
    if (u < acc) return id;
  }
  return work_.back().second;
}

float Sampler::Logprob(std::span<const float> logits, int32_t token) {
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - max_logit);
  return static_cast<float>(logits[token] - max_logit - std::log(sum));
}

std::vector<std::pair<int32_t, float>> Sampler::TopLogprobs(std::span<const float> logits, int n) {
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - max_logit);
  const double log_sum = std::log(sum);
  std::vector<int32_t> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  n = std::min<int>(n, static_cast<int>(ids.size()));
  std::partial_sort(ids.begin(), ids.begin() + n, ids.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  std::vector<std::pair<int32_t, float>> out;
  for (int i = 0; i < n; ++i) out.emplace_back(ids[i], static_cast<float>(logits[ids[i]] - max_logit - log_sum));
  return out;
}

std::string StopFilter::Push(std::string_view text) {
  if (stopped_) return "";
  pending_ += text;
  size_t cut = std::string::npos;
  for (const std::string& s : stops_) cut = std::min(cut, pending_.find(s));
  if (cut != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, cut);
    pending_.clear();
    return out;
  }
  // Keep the longest suffix that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const std::string& s : stops_) {
    for (size_t len = std::min(s.size() - 1, pending_.size()); len > hold; --len) {
      if (pending_.compare(pending_.size() - len, len, s, 0, len) == 0) {
        hold = len;
        break;
      }
    }
  }
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StopFilter::Flush() {
  std::string out = std::move(pending_);
  pending_.clear();
  return out;
}

}  // namespace hubnode::runtime
