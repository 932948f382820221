// The CUDA entry points of a binary built without the CUDA backend (no toolkit, or
// -DHUBNODE_CUDA=OFF): they say so. With the backend, runtime/cuda/cuda_backend.cc defines them.
#ifndef HUBNODE_HAVE_CUDA
#include "runtime/backend.h"

namespace hubnode::runtime {

bool CudaBuilt() { return false; }

Result<std::unique_ptr<Backend>> MakeCudaBackend(int, MatMulPrecision) {
  return UnavailableError("this hubnode was built without CUDA (cmake found no CUDA toolkit, or -DHUBNODE_CUDA=OFF)");
}

}  // namespace hubnode::runtime
#endif
