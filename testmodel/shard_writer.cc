#include "testmodel/shard_writer.h"

#include <algorithm>
#include <memory>

#include "testmodel/output.h"

namespace hubnode::testmodel {
namespace {

constexpr uint64_t kCopyPiece = uint64_t{4} << 20;

// One piece of work: `bytes` bytes of tensor `tensor` starting at element `first` (draw) or at
// byte `first` of the tensor (copy).
struct Piece {
  size_t tensor;
  uint64_t first;
  uint64_t bytes;
};

std::vector<Piece> CutPieces(const std::vector<TensorEntry>& tensors,
                             const std::vector<TensorSource>& sources) {
  std::vector<Piece> pieces;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t size = DTypeSize(tensors[i].dtype);
    if (sources[i].fp8 != Fp8Part::kNone) {
      pieces.push_back({i, 0, tensors[i].end - tensors[i].begin});
    } else if (sources[i].from != nullptr) {
      const uint64_t total = tensors[i].end - tensors[i].begin;
      for (uint64_t b = 0; b < total; b += kCopyPiece) {
        pieces.push_back({i, b, std::min(kCopyPiece, total - b)});
      }
    } else {
      const uint64_t n = tensors[i].numel();
      for (uint64_t e = 0; e < n; e += kBlockElements) {
        pieces.push_back({i, e, std::min(kBlockElements, n - e) * size});
      }
    }
  }
  return pieces;
}

}  // namespace

Status WriteShard(const std::string& path, std::string_view prefix,
                  const std::vector<TensorEntry>& tensors, const std::vector<TensorSource>& sources,
                  ThreadPool& pool) {
  if (tensors.size() != sources.size()) return InternalError("WriteShard: sources do not match");
  ASSIGN_OR_RETURN(OutFile out, OutFile::Create(path));
  RETURN_IF_ERROR(out.Append(prefix));

  const std::vector<Piece> pieces = CutPieces(tensors, sources);
  const size_t window = std::max<size_t>(2, 2 * pool.size());
  uint64_t max_piece = std::max(kCopyPiece, kBlockElements * 4);
  for (const Piece& p : pieces) max_piece = std::max(max_piece, p.bytes);
  std::vector<std::unique_ptr<char[]>> buffers(window);
  std::vector<Status> statuses(window);
  for (size_t start = 0; start < pieces.size(); start += window) {
    const size_t count = std::min(window, pieces.size() - start);
    for (size_t k = 0; k < count; ++k) {
      if (!buffers[k]) buffers[k] = std::make_unique<char[]>(max_piece);
      pool.Submit([&, k, piece = pieces[start + k]] {
        const TensorEntry& t = tensors[piece.tensor];
        const TensorSource& src = sources[piece.tensor];
        char* buf = buffers[k].get();
        if (src.fp8 != Fp8Part::kNone) {
          FillFp8(src.seed, src.init, src.rows, src.cols, src.fp8 == Fp8Part::kWeight ? buf : nullptr,
                  src.fp8 == Fp8Part::kScales ? buf : nullptr);
          statuses[k] = OkStatus();
        } else if (src.from != nullptr) {
          statuses[k] = src.from->ReadAt(src.from_offset + piece.first, piece.bytes, buf);
        } else {
          FillElements(src.seed, src.init, t.dtype, piece.first, piece.bytes / DTypeSize(t.dtype),
                       buf);
          statuses[k] = OkStatus();
        }
      });
    }
    pool.Wait();
    for (size_t k = 0; k < count; ++k) {
      RETURN_IF_ERROR(statuses[k]);
      RETURN_IF_ERROR(out.Append(std::string_view(buffers[k].get(), pieces[start + k].bytes)));
    }
  }
  return out.Close();
}

}  // namespace hubnode::testmodel
