// Measures the GPU's device-to-device copy bandwidth: the roofline for decode on the CUDA backend,
// which reads every active weight once per token from device memory. bench/membw's counterpart
// for the device, counted the same way so the two rooflines compare: bytes copied per second
// (each byte is read once and written once and counted once; the memory moves twice that),
// best of REPS timed copies of a MIB buffer (cudaMemcpyAsync, timed with CUDA events, after one
// untimed copy). A copy both reads and writes every byte, so a kernel that only reads (decode)
// can go faster than this figure: decode / roofline above 1 is possible on a GPU.
// Prints just the number (GB/s, 1e9 bytes). Without a device (or on any CUDA error) it prints the
// error to stderr and exits 2.
// Usage: cuda_membw [MIB] [REPS]   (default 1024 MiB, 10 repetitions)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace {

bool Check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return true;
  std::fprintf(stderr, "cuda_membw: %s: %s\n", what, cudaGetErrorString(e));
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1024;
  const int reps = argc > 2 ? std::max(1, std::atoi(argv[2])) : 10;
  if (mib == 0) {
    std::fprintf(stderr, "usage: cuda_membw [MIB] [REPS]\n");
    return 2;
  }
  const size_t bytes = mib << 20;
  int devices = 0;
  if (!Check(cudaGetDeviceCount(&devices), "cudaGetDeviceCount")) return 2;
  if (devices == 0) {
    std::fprintf(stderr, "cuda_membw: no CUDA device\n");
    return 2;
  }
  void* src = nullptr;
  void* dst = nullptr;
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  // Both buffers are written before the timed copies: no first-touch cost is measured.
  if (!Check(cudaMalloc(&src, bytes), "cudaMalloc") || !Check(cudaMalloc(&dst, bytes), "cudaMalloc") ||
      !Check(cudaMemset(src, 1, bytes), "cudaMemset") || !Check(cudaMemset(dst, 0, bytes), "cudaMemset") ||
      !Check(cudaStreamCreate(&stream), "cudaStreamCreate") || !Check(cudaEventCreate(&start), "cudaEventCreate") ||
      !Check(cudaEventCreate(&stop), "cudaEventCreate") ||
      !Check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream), "warm-up copy") ||
      !Check(cudaStreamSynchronize(stream), "cudaStreamSynchronize")) {
    return 2;
  }
  double best = 0;
  for (int rep = 0; rep < reps; ++rep) {
    float ms = 0;
    if (!Check(cudaEventRecord(start, stream), "cudaEventRecord") ||
        !Check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream), "cudaMemcpyAsync") ||
        !Check(cudaEventRecord(stop, stream), "cudaEventRecord") || !Check(cudaEventSynchronize(stop), "cudaEventSynchronize") ||
        !Check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime")) {
      return 2;
    }
    if (ms > 0) best = std::max(best, bytes / (ms * 1e-3) / 1e9);
  }
  // The copy really happened: the last byte of dst is src's.
  unsigned char last = 0;
  if (!Check(cudaMemcpy(&last, static_cast<char*>(dst) + bytes - 1, 1, cudaMemcpyDeviceToHost), "cudaMemcpy")) return 2;
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaStreamDestroy(stream);
  cudaFree(src);
  cudaFree(dst);
  if (last != 1) {
    std::fprintf(stderr, "cuda_membw: the copy did not arrive\n");
    return 1;
  }
  std::printf("%.3f\n", best);
  return 0;
}
