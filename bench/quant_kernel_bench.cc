// The CPU backend's products by weight dtype: bf16 (the baseline) against float8, int8 and int4
// with block scales (runtime/quant.h formats), THREADS threads (default 1), decode (1 activation row) and prefill
// (64 rows), for a matrix that stays in cache and one much larger than it. Prints G weights/s
// (weights multiplied per second, per activation row) and the ratio to bf16 in the same run; the
// dtypes alternate within each of REPS rounds and each figure is its best round.
// Usage: quant_kernel_bench [REPS] [THREADS]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "runtime/backend.h"
#include "runtime/quant.h"

using namespace hubnode::runtime;

namespace {

struct Held {
  std::vector<uint8_t> bytes;
  WeightView view;
};

Held Make(DType dt, int64_t rows, int64_t cols, const std::vector<float>& src) {
  Held h;
  if (dt == DType::kBF16) {
    h.bytes.resize(rows * cols * 2);
    for (int64_t i = 0; i < rows * cols; ++i) {
      uint32_t b;
      std::memcpy(&b, &src[i], 4);
      const uint16_t v = static_cast<uint16_t>(b >> 16);
      std::memcpy(h.bytes.data() + 2 * i, &v, 2);
    }
    h.view = WeightView{h.bytes.data(), dt, rows, cols};
    return h;
  }
  const QuantFormat f = DefaultQuantFormat(dt);
  h.bytes.resize(QuantBytes(rows, cols, f));
  float* scales = reinterpret_cast<float*>(h.bytes.data() + QuantDataBytes(rows, cols, dt));
  if (!Quantize(src.data(), rows, cols, f, h.bytes.data(), scales).ok()) std::abort();
  h.view = WeightView{h.bytes.data(), dt, rows, cols, scales, f.block_rows, f.block_cols};
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  const int threads = argc > 2 ? std::max(1, std::atoi(argv[2])) : 1;
  auto backend = MakeCpuBackend(threads, MatMulPrecision::kFp32);
  std::printf("%d thread(s), best of %d alternating rounds\n\n", threads, reps);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0, 0.05f);
  const DType dtypes[] = {DType::kBF16, DType::kF8E4M3, DType::kI8, DType::kI4};
  const char* names[] = {"bf16", "fp8 (1x128)", "int8 (1x128)", "int4 (1x32)"};
  struct Shape {
    const char* what;
    int64_t rows, cols;
  };
  const Shape shapes[] = {{"in cache: 384 x 128 (an expert's up projection)", 384, 128},
                          {"from memory: 8192 x 4096 (64 MiB as bf16)", 8192, 4096}};
  std::printf("| matrix | rows of x | dtype | G weights/s | vs bf16 |\n|---|---|---|---|---|\n");
  for (const Shape& s : shapes) {
    std::vector<float> src(s.rows * s.cols);
    for (float& v : src) v = nd(rng);
    std::vector<Held> held;
    for (DType dt : dtypes) held.push_back(Make(dt, s.rows, s.cols, src));
    for (int64_t n : {int64_t{1}, int64_t{64}}) {
      std::vector<float> x(n * s.cols), y(n * s.rows);
      for (float& v : x) v = nd(rng);
      // Repeat each product until ~20 ms of work, so small matrices are timed from cache.
      const int64_t iters = std::max<int64_t>(1, 20000000 / (s.rows * s.cols * n / 16 + 1) / 16);
      std::vector<double> best(4, 0);
      for (int r = 0; r < reps; ++r) {
        for (size_t d = 0; d < held.size(); ++d) {
          const MatMulArgs a{x.data(), n, s.cols, held[d].view, nullptr, y.data(), s.rows, false};
          const auto t0 = std::chrono::steady_clock::now();
          for (int64_t it = 0; it < iters; ++it) backend->MatMul({&a, 1});
          const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          best[d] = std::max(best[d], static_cast<double>(s.rows) * s.cols * n * iters / sec / 1e9);
        }
      }
      for (size_t d = 0; d < held.size(); ++d) {
        std::printf("| %s | %lld | %s | %.2f | %.2f |\n", s.what, static_cast<long long>(n), names[d], best[d],
                    best[d] / best[0]);
      }
    }
  }
  return 0;
}
