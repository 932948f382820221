// Safetensors header parsing as the tensor count grows: hubnode's one-pass parser against
// nlohmann's DOM parse of the same text (the linear baseline) and nlohmann's parse with a
// callback (what the store used before: quadratic, timed up to 40k tensors only).
// Prints a markdown table. Usage: header_bench [MAX_TENSORS=1000000]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "store/safetensors.h"

namespace {

std::string Header(size_t n) {
  std::string h = "{";
  for (size_t i = 0; i < n; ++i) {
    if (i) h += ",";
    // Short names, so that a million tensors fit the 100 MB header limit.
    h += "\"e" + std::to_string(i) + ".w\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[" +
         std::to_string(2 * i) + "," + std::to_string(2 * i + 2) + "]}";
  }
  return h + "}";
}

template <typename F>
double Best(F f, int runs) {
  double best = 1e9;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t max = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
  std::printf("| tensors | header MB | hubnode ms | nlohmann DOM ms | ratio | old callback parse ms |\n");
  std::printf("|---|---|---|---|---|---|\n");
  double first = 0;
  for (size_t n = 10'000; n <= max; n *= 10) {
    const std::string h = Header(n);
    const int runs = n >= 1'000'000 ? 1 : 3;
    const double ours = Best([&] {
      auto r = hubnode::store::ParseSafetensorsHeader(h, 8 + h.size() + 2 * n);
      if (!r.ok()) std::abort();
    }, runs);
    const double dom = Best([&] { (void)nlohmann::json::parse(h, nullptr, false); }, runs);
    std::string old = "-";
    if (n <= 40'000) {
      const double t = Best([&] {
        nlohmann::json::parser_callback_t cb = [](int, nlohmann::json::parse_event_t, nlohmann::json&) { return true; };
        (void)nlohmann::json::parse(h, cb, false);
      }, 1);
      old = std::to_string(static_cast<long>(t * 1e3));
    }
    if (first == 0) first = ours;
    std::printf("| %zu | %.1f | %.0f | %.0f | %.2f | %s |\n", n, h.size() / 1e6, ours * 1e3, dom * 1e3, ours / dom,
                old.c_str());
  }
  std::printf("\nhubnode's growth from 10k to %zu tensors is linear when the ratio to the DOM baseline stays flat.\n", max);
  return 0;
}
