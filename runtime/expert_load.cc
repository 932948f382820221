#include "runtime/expert_load.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>


namespace hubnode::runtime {
namespace {

uint16_t F32ToBf16(float f) {  // round to nearest even (weights are finite)
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return static_cast<uint16_t>((b + 0x7FFF + ((b >> 16) & 1)) >> 16);
}

}  // namespace

bool ParseExpertDType(std::string_view text, ExpertDType* out) {
  for (ExpertDType d : {ExpertDType::kStored, ExpertDType::kBf16, ExpertDType::kFp8, ExpertDType::kInt8, ExpertDType::kInt4}) {
    if (text == ExpertDTypeName(d)) {
      *out = d;
      return true;
    }
  }
  return false;
}

std::string_view ExpertDTypeName(ExpertDType d) {
  switch (d) {
    case ExpertDType::kStored: return "stored";
    case ExpertDType::kBf16: return "bf16";
    case ExpertDType::kFp8: return "fp8";
    case ExpertDType::kInt8: return "int8";
    case ExpertDType::kInt4: return "int4";
  }
  return "";
}

Result<ExpertTensorPlan> PlanExpertTensor(const std::unordered_map<std::string, TensorDesc>& tensors,
                                          const std::string& name, ExpertDType target) {
  auto it = tensors.find(name);
  if (it == tensors.end()) return InvalidArgumentError("missing tensor " + name);
  ExpertTensorPlan p;
  p.tensor = &it->second;
  const TensorDesc& d = it->second;
  if (d.shape.size() != 2 || d.shape[0] < 1 || d.shape[1] < 1) return InvalidArgumentError("tensor " + name + " is not a matrix");
  const int64_t rows = d.shape[0], cols = d.shape[1];
  if (d.dtype == DType::kF8E4M3) {
    auto s = tensors.find(name + "_scale_inv");
    const int64_t sr = (rows + kStoredFp8Block - 1) / kStoredFp8Block, sc = (cols + kStoredFp8Block - 1) / kStoredFp8Block;
    if (s == tensors.end()) return InvalidArgumentError("tensor " + name + " is float8 without " + name + "_scale_inv");
    if (s->second.dtype != DType::kF32 || s->second.shape != std::vector<int64_t>{sr, sc}) {
      return InvalidArgumentError("tensor " + name + "_scale_inv must be F32 [" + std::to_string(sr) + "," +
                                  std::to_string(sc) + "] (128 x 128 blocks)");
    }
    p.scale_inv = &s->second;
  } else if (d.dtype != DType::kBF16 && d.dtype != DType::kF16 && d.dtype != DType::kF32) {
    return InvalidArgumentError("tensor " + name + " has dtype " + std::string(DTypeName(d.dtype)) + ", not an expert weight dtype");
  }
  // float8 asked of float8: kept in its own blocks, not re-quantized.
  if (target == ExpertDType::kFp8 && p.scale_inv) target = ExpertDType::kStored;
  switch (target) {
    case ExpertDType::kStored:
      p.dtype = d.dtype;
      if (p.scale_inv) p.format = QuantFormat{DType::kF8E4M3, kStoredFp8Block, kStoredFp8Block};
      break;
    case ExpertDType::kBf16: p.dtype = DType::kBF16; break;
    case ExpertDType::kFp8: p.dtype = DType::kF8E4M3; break;
    case ExpertDType::kInt8: p.dtype = DType::kI8; break;
    case ExpertDType::kInt4: p.dtype = DType::kI4; break;
  }
  if (IsBlockScaled(p.dtype)) {
    if (!p.scale_inv || target != ExpertDType::kStored) p.format = DefaultQuantFormat(p.dtype);
    const int64_t unit = p.dtype == DType::kI4 ? 32 : 16;
    if ((p.format.block_cols < cols && p.format.block_cols % unit != 0) || (p.dtype == DType::kI4 && cols % 2 != 0)) {
      return InvalidArgumentError("tensor " + name + " cannot be held as " + std::string(ExpertDTypeName(target)));
    }
    p.bytes = QuantBytes(rows, cols, p.format);
  } else {
    p.bytes = DTypeBytes(p.dtype, static_cast<uint64_t>(rows * cols));
  }
  return p;
}

Result<WeightView> LoadExpertTensor(TensorSource& source, Backend& backend, const ExpertTensorPlan& p, uint8_t* dst,
                                    std::vector<uint8_t>& staging, bool dst_on_host) {
  const TensorDesc& d = *p.tensor;
  const int64_t rows = d.shape[0], cols = d.shape[1];
  const bool host = dst_on_host || backend.host_memory();
  WeightView v{dst, p.dtype, rows, cols};
  const bool block_scaled = IsBlockScaled(p.dtype);
  if (block_scaled) {
    v.scales = reinterpret_cast<const float*>(dst + QuantDataBytes(rows, cols, p.dtype));
    v.block_rows = p.format.block_rows;
    v.block_cols = p.format.block_cols;
  }
  // Held as stored: one read straight into backend memory (host), or through staging.
  auto read_into = [&](const TensorDesc& t, uint8_t* to) -> Status {
    if (host) return source.ReadTensor(t.name, {to, t.bytes()});
    staging.resize(t.bytes());
    RETURN_IF_ERROR(source.ReadTensor(t.name, staging));
    backend.Upload(to, staging);
    return OkStatus();
  };
  if (p.dtype == d.dtype && (!block_scaled || p.format.block_rows == kStoredFp8Block)) {
    RETURN_IF_ERROR(read_into(d, dst));
    if (p.scale_inv) {
      // The scales are checked before they are used (a hostile checkpoint's NaN would poison
      // every product they touch).
      std::vector<float> scales(p.scale_inv->bytes() / 4);
      RETURN_IF_ERROR(source.ReadTensor(p.scale_inv->name, {reinterpret_cast<uint8_t*>(scales.data()), p.scale_inv->bytes()}));
      for (float f : scales) {
        if (!std::isfinite(f)) return InvalidArgumentError("tensor " + p.scale_inv->name + " has a non-finite scale");
      }
      const auto* bytes = reinterpret_cast<const uint8_t*>(scales.data());
      uint8_t* to = dst + QuantDataBytes(rows, cols, p.dtype);
      if (host) {
        std::memcpy(to, bytes, p.scale_inv->bytes());
      } else {
        backend.Upload(to, {bytes, p.scale_inv->bytes()});
      }
    }
    return v;
  }
  // Converted: the stored tensor (and its scales) in staging, to f32 a band of rows at a time,
  // then into the held dtype, written to `dst` directly (host) or through a second buffer.
  const uint64_t scales_at = (d.bytes() + 63) / 64 * 64;
  staging.resize(scales_at + (p.scale_inv ? p.scale_inv->bytes() : 0));
  RETURN_IF_ERROR(source.ReadTensor(d.name, {staging.data(), d.bytes()}));
  WeightView stored{staging.data(), d.dtype, rows, cols};
  if (p.scale_inv) {
    RETURN_IF_ERROR(source.ReadTensor(p.scale_inv->name, {staging.data() + scales_at, p.scale_inv->bytes()}));
    stored.scales = reinterpret_cast<const float*>(staging.data() + scales_at);
    stored.block_rows = stored.block_cols = kStoredFp8Block;
    for (uint64_t i = 0; i < p.scale_inv->bytes() / 4; ++i) {
      if (!std::isfinite(stored.scales[i])) return InvalidArgumentError("tensor " + p.scale_inv->name + " has a non-finite scale");
    }
  }
  std::vector<uint8_t> out_host;
  uint8_t* out = dst;
  if (!host) {
    out_host.resize(p.bytes);
    out = out_host.data();
  }
  const int64_t band = block_scaled ? std::max<int64_t>(p.format.block_rows, 64 / p.format.block_rows * p.format.block_rows) : 64;
  std::vector<float> f32(static_cast<size_t>(std::min(rows, band) * cols));
  float* scales = block_scaled ? reinterpret_cast<float*>(out + QuantDataBytes(rows, cols, p.dtype)) : nullptr;
  const int64_t nbc = block_scaled ? (cols + std::min(p.format.block_cols, cols) - 1) / std::min(p.format.block_cols, cols) : 0;
  for (int64_t r0 = 0; r0 < rows; r0 += band) {
    const int64_t n = std::min(band, rows - r0);
    HostRowsToF32(stored, r0, n, f32.data());
    if (block_scaled) {
      RETURN_IF_ERROR(Quantize(f32.data(), n, cols, p.format, out + DTypeBytes(p.dtype, static_cast<uint64_t>(r0 * cols)),
                               scales + (r0 / p.format.block_rows) * nbc)
                          .WithContext(d.name));
    } else if (p.dtype == DType::kBF16) {
      uint16_t* o = reinterpret_cast<uint16_t*>(out) + r0 * cols;
      for (int64_t i = 0; i < n * cols; ++i) o[i] = F32ToBf16(f32[i]);
    } else {
      return InvalidArgumentError("tensor " + d.name + ": no conversion to " + std::string(DTypeName(p.dtype)));
    }
  }
  if (!host) backend.Upload(dst, out_host);
  return v;
}

}  // namespace hubnode::runtime
