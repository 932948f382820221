#include "testmodel/weights.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <vector>
#include <algorithm>

namespace hubnode::testmodel {
namespace {

constexpr double kStd = 0.02;
constexpr double kLn2 = 0.69314718055994530942;
constexpr double kSqrt2 = 1.41421356237309504880;

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// xoshiro256** (Blackman and Vigna): fast, 256 bits of state, good enough for test weights.
class Xoshiro256 {
 public:
  explicit Xoshiro256(uint64_t seed) {
    for (uint64_t& word : s_) word = SplitMix64(seed);
  }
  uint64_t Next() {
    const uint64_t result = std::rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = std::rotl(s_[3], 45);
    return result;
  }
  // Uniform in [-1, 1) with 53 random bits.
  double Symmetric() { return static_cast<double>(Next() >> 11) * 0x1.0p-52 - 1.0; }

 private:
  uint64_t s_[4];
};

// Draws normal deviates in pairs with the polar form of the Box-Muller transform, which needs a
// logarithm and a square root but no trigonometry (so no libm and no cross-libc differences).
class NormalStream {
 public:
  explicit NormalStream(uint64_t seed) : rng_(seed) {}
  double Next() {
    if (have_spare_) {
      have_spare_ = false;
      return spare_;
    }
    double u, v, s;
    do {
      u = rng_.Symmetric();
      v = rng_.Symmetric();
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double f = std::sqrt(-2.0 * PortableLog(s) / s);
    spare_ = v * f;
    have_spare_ = true;
    return u * f;
  }

 private:
  Xoshiro256 rng_;
  double spare_ = 0;
  bool have_spare_ = false;
};

uint64_t BlockSeed(uint64_t tensor_seed, uint64_t block) {
  uint64_t state = tensor_seed ^ (block * 0xD1B54A32D192ED03ull);
  return SplitMix64(state);
}

template <DType D>
void Store(float value, char* out) {
  if constexpr (D == DType::kF32) {
    const uint32_t bits = std::bit_cast<uint32_t>(value);
    for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(bits >> (8 * i));
  } else {
    const uint16_t bits = D == DType::kBF16 ? FloatToBf16(value) : FloatToF16(value);
    out[0] = static_cast<char>(bits);
    out[1] = static_cast<char>(bits >> 8);
  }
}

template <DType D>
void FillBlock(uint64_t tensor_seed, Init init, uint64_t block, uint64_t skip, uint64_t count,
               char* out) {
  NormalStream normal(BlockSeed(tensor_seed, block));
  for (uint64_t i = 0; i < skip; ++i) normal.Next();
  const double offset = init == Init::kNormScale ? 1.0 : 0.0;
  constexpr size_t kSize = D == DType::kF32 ? 4 : 2;
  for (uint64_t i = 0; i < count; ++i) {
    Store<D>(static_cast<float>(offset + kStd * normal.Next()), out + i * kSize);
  }
}

}  // namespace

Init InitFor(std::string_view tensor_name) {
  return tensor_name.ends_with("norm.weight") ? Init::kNormScale : Init::kNormal;
}

size_t DTypeSize(DType dtype) { return dtype == DType::kF32 ? 4 : dtype == DType::kF8E4M3 ? 1 : 2; }

std::string_view SafetensorsDType(DType dtype) {
  switch (dtype) {
    case DType::kBF16:
      return "BF16";
    case DType::kF16:
      return "F16";
    case DType::kF32:
      return "F32";
    case DType::kF8E4M3:
      return "F8_E4M3";
  }
  return "BF16";
}

uint16_t FloatToBf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x0040u);  // NaN
  const uint32_t rounding = 0x7FFFu + ((x >> 16) & 1u);
  return static_cast<uint16_t>((x + rounding) >> 16);
}

float Bf16ToFloat(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

uint16_t FloatToF16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t exp = (x >> 23) & 0xFFu;
  uint32_t mant = x & 0x7FFFFFu;
  if (exp == 0xFF) return static_cast<uint16_t>(sign | 0x7C00u | (mant ? 0x200u : 0u));
  const int e = static_cast<int>(exp) - 127 + 15;
  if (e >= 31) return static_cast<uint16_t>(sign | 0x7C00u);
  uint32_t half, rem, mid;
  if (e <= 0) {
    // Subnormal half (or zero): the value in units of 2^-24 is the full significand >> (14 - e).
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000u;
    const int shift = 14 - e;
    half = mant >> shift;
    rem = mant & ((1u << shift) - 1);
    mid = 1u << (shift - 1);
  } else {
    half = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
    rem = mant & 0x1FFFu;
    mid = 0x1000u;
  }
  // A carry out of the significand correctly bumps the exponent (up to infinity).
  if (rem > mid || (rem == mid && (half & 1u))) ++half;
  return static_cast<uint16_t>(sign | half);
}

uint64_t TensorSeed(uint64_t seed, std::string_view name) {
  uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a
  for (char c : name) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001B3ull;
  }
  uint64_t state = seed;
  const uint64_t mixed = SplitMix64(state);
  state = h ^ mixed;
  return SplitMix64(state);
}

double PortableLog(double x) {
  const uint64_t bits = std::bit_cast<uint64_t>(x);
  int e = static_cast<int>((bits >> 52) & 0x7FF) - 1023;
  double m = std::bit_cast<double>((bits & ((uint64_t{1} << 52) - 1)) | (uint64_t{1023} << 52));
  if (m > kSqrt2) {
    m *= 0.5;
    ++e;
  }
  // log(m) = 2 atanh(s) with s = (m-1)/(m+1), |s| <= 0.172: ten terms of the series leave an
  // error below 1e-16.
  const double s = (m - 1.0) / (m + 1.0);
  const double s2 = s * s;
  double poly = 2.0 / 19;
  poly = 2.0 / 17 + s2 * poly;
  poly = 2.0 / 15 + s2 * poly;
  poly = 2.0 / 13 + s2 * poly;
  poly = 2.0 / 11 + s2 * poly;
  poly = 2.0 / 9 + s2 * poly;
  poly = 2.0 / 7 + s2 * poly;
  poly = 2.0 / 5 + s2 * poly;
  poly = 2.0 / 3 + s2 * poly;
  poly = 2.0 + s2 * poly;
  return static_cast<double>(e) * kLn2 + s * poly;
}

void FillElements(uint64_t tensor_seed, Init init, DType dtype, uint64_t first, uint64_t count,
                  char* out) {
  const size_t size = DTypeSize(dtype);
  while (count > 0) {
    const uint64_t block = first / kBlockElements;
    const uint64_t skip = first % kBlockElements;
    const uint64_t n = std::min(count, kBlockElements - skip);
    switch (dtype) {
      case DType::kBF16:
        FillBlock<DType::kBF16>(tensor_seed, init, block, skip, n, out);
        break;
      case DType::kF16:
        FillBlock<DType::kF16>(tensor_seed, init, block, skip, n, out);
        break;
      case DType::kF32:
        FillBlock<DType::kF32>(tensor_seed, init, block, skip, n, out);
        break;
      case DType::kF8E4M3:  // needs whole blocks for its scales: FillFp8
        std::fill(out, out + n, char{0});
        break;
    }
    out += n * size;
    first += n;
    count -= n;
  }
}

float F8E4M3ToFloat(uint8_t b) {
  const int e = (b >> 3) & 15, m = b & 7;
  float v;
  if (e == 0) {
    v = static_cast<float>(m) * 0x1.0p-9f;  // m/8 · 2^-6
  } else if (e == 15 && m == 7) {
    return std::bit_cast<float>(0x7FC00000u);
  } else {
    v = (1.0f + static_cast<float>(m) / 8.0f) * std::bit_cast<float>(static_cast<uint32_t>(e - 7 + 127) << 23);
  }
  return (b & 0x80) ? -v : v;
}

uint8_t FloatToF8E4M3(float f) {
  if (f != f) return 0x7F;
  const uint8_t sign = std::signbit(f) ? 0x80 : 0;
  const float a = std::fabs(f);
  // The 127 finite non-negative codes are ordered by value: binary search for the neighbours.
  int lo = 0, hi = 126;
  if (a >= F8E4M3ToFloat(126)) return sign | 126;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    (F8E4M3ToFloat(static_cast<uint8_t>(mid)) <= a ? lo : hi) = mid;
  }
  const float dl = a - F8E4M3ToFloat(static_cast<uint8_t>(lo)), dh = F8E4M3ToFloat(static_cast<uint8_t>(hi)) - a;
  const int code = dl < dh ? lo : dh < dl ? hi : ((lo & 1) ? hi : lo);
  return static_cast<uint8_t>(sign | code);
}

void FillFp8(uint64_t tensor_seed, Init init, int64_t rows, int64_t cols, char* data, char* scales) {
  std::vector<float> v(static_cast<size_t>(rows * cols));
  FillElements(tensor_seed, init, DType::kF32, 0, v.size(), reinterpret_cast<char*>(v.data()));
  for (float& x : v) {  // FillElements wrote little-endian bytes
    char b[4];
    std::memcpy(b, &x, 4);
    const uint32_t bits = static_cast<uint32_t>(static_cast<uint8_t>(b[0])) | static_cast<uint32_t>(static_cast<uint8_t>(b[1])) << 8 |
                          static_cast<uint32_t>(static_cast<uint8_t>(b[2])) << 16 | static_cast<uint32_t>(static_cast<uint8_t>(b[3])) << 24;
    x = std::bit_cast<float>(bits);
  }
  constexpr int64_t kBlock = 128;
  const int64_t br = (rows + kBlock - 1) / kBlock, bc = (cols + kBlock - 1) / kBlock;
  for (int64_t i = 0; i < br; ++i) {
    for (int64_t j = 0; j < bc; ++j) {
      float absmax = 0;
      for (int64_t r = i * kBlock; r < std::min(rows, (i + 1) * kBlock); ++r) {
        for (int64_t c = j * kBlock; c < std::min(cols, (j + 1) * kBlock); ++c) absmax = std::max(absmax, std::fabs(v[r * cols + c]));
      }
      const float scale = absmax > 0 ? absmax / 448.0f : 1.0f;
      if (scales) {
        const uint32_t bits = std::bit_cast<uint32_t>(scale);
        for (int k = 0; k < 4; ++k) scales[(i * bc + j) * 4 + k] = static_cast<char>(bits >> (8 * k));
      }
      if (data) {
        for (int64_t r = i * kBlock; r < std::min(rows, (i + 1) * kBlock); ++r) {
          for (int64_t c = j * kBlock; c < std::min(cols, (j + 1) * kBlock); ++c) {
            data[r * cols + c] = static_cast<char>(FloatToF8E4M3(v[r * cols + c] / scale));
          }
        }
      }
    }
  }
}

}  // namespace hubnode::testmodel
