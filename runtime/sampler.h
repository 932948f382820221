// Token sampling (greedy, temperature, top-k, top-p with a per-request seeded generator),
// log-probabilities, and the stop-string filter of a generation's text.
//
// Thread safety: a Sampler or StopFilter belongs to one request.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "runtime/runtime.h"

namespace hubnode::runtime {

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  // Picks the next token from raw logits.
  int32_t Sample(std::span<const float> logits);
  // log softmax of the raw logits at `token`, and the `n` most likely tokens (highest first).
  static float Logprob(std::span<const float> logits, int32_t token);
  static std::vector<std::pair<int32_t, float>> TopLogprobs(std::span<const float> logits, int n);

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> work_;
};

// Holds back text that may be the beginning of a stop string, and cuts at the first stop.
class StopFilter {
 public:
  explicit StopFilter(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Appends newly decoded text; returns what is now final. Sets stopped() when a stop string
  // appeared (the returned text ends before it).
  std::string Push(std::string_view text);
  std::string Flush();  // the held-back rest (no stop string matched)
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace hubnode::runtime
