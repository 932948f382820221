// A CUDA emulator for tests on machines without a GPU: enough of the CUDA runtime API, the device
// intrinsics and the kernel launch to run runtime/cuda/ (kernels and backend) on the CPU, so the
// CUDA backend's op test runs against the CPU backend here (tests/runtime/cuda/emu/README.md).
//
// Semantics: device memory is host memory; every call is synchronous. A launch runs the grid's
// blocks one after another, each with blockDim.x threads as fibers on the calling thread:
// __syncthreads is a barrier of the block's threads, a warp's shuffles and __syncwarp a barrier
// of its 32 threads, and __shared__ variables are statics shared by the block's threads. So the kernels' index
// arithmetic, tails, shared-memory staging and warp reductions run as written; what cannot be
// checked here is the hardware: memory ordering without barriers, timing, occupancy.
//
// Kernel sources are compiled as C++ after tests/runtime/cuda/emu/chevrons.py rewrote each
// `kernel<<<grid, block, smem, stream>>>(args)` into `::emu::Launch(kernel, grid, block, smem,
// stream)(args)`.
#pragma once

#include <algorithm>
#include <setjmp.h>
#include <ucontext.h>

#include <cstdio>
#include <tuple>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

// --- language -----------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

using std::max;
using std::min;

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint2 {
  unsigned x, y;
};
struct uint4 {
  unsigned x, y, z, w;
};
struct float4 {
  float x, y, z, w;
};

inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace emu {

// A block's threads are fibers on the launching thread: a barrier switches to the next runnable
// fiber, and the scheduler releases a barrier when every live thread of its scope (the block, or
// the warp) waits at one. No OS threads: launches are cheap and deterministic. The fibers live as
// long as the launching thread and run one block after another: each is entered once through
// makecontext/swapcontext (its own stack) and switched after that with _setjmp/_longjmp, which
// make no system call (swapcontext saves the signal mask each time).
struct Fiber {
  ucontext_t ctx;
  jmp_buf jb;
  bool started = false;
  std::vector<char> stack;
  enum State { kRunnable, kAtBlockBarrier, kAtWarpBarrier, kDone } state = kDone;
};
struct Block {
  std::function<void()> body;
  std::vector<float> slots;
  Fiber* current = nullptr;
  ucontext_t entry;
  jmp_buf scheduler;
};
inline thread_local Block* block = nullptr;

inline void Wait(Fiber::State why) {
  Fiber* f = block->current;
  f->state = why;
  if (!_setjmp(f->jb)) _longjmp(block->scheduler, 1);
}

inline void FiberMain() {
  for (;;) {  // one block's body per turn
    block->body();
    Fiber* f = block->current;
    f->state = Fiber::kDone;
    if (!_setjmp(f->jb)) _longjmp(block->scheduler, 1);
  }
}

// The calling thread's first `threads` fibers (created once; stable addresses).
inline std::vector<std::unique_ptr<Fiber>>& Fibers(unsigned threads) {
  static thread_local std::vector<std::unique_ptr<Fiber>> pool;
  while (pool.size() < threads) {
    auto f = std::make_unique<Fiber>();
    f->stack.resize(256 << 10);
    getcontext(&f->ctx);
    f->ctx.uc_stack.ss_sp = f->stack.data();
    f->ctx.uc_stack.ss_size = f->stack.size();
    f->ctx.uc_link = nullptr;
    makecontext(&f->ctx, FiberMain, 0);
    pool.push_back(std::move(f));
  }
  return pool;
}

// Runs one block to completion. Aborts on a barrier no thread can pass (a kernel bug).
inline void RunBlock(Block& b, unsigned threads) {
  std::vector<std::unique_ptr<Fiber>>& fibers = Fibers(threads);
  for (unsigned t = 0; t < threads; ++t) fibers[t]->state = Fiber::kRunnable;
  for (;;) {
    for (unsigned t = 0; t < threads; ++t) {
      Fiber& f = *fibers[t];
      if (f.state != Fiber::kRunnable) continue;
      b.current = &f;
      threadIdx = dim3(t);
      if (!_setjmp(b.scheduler)) {
        if (f.started) _longjmp(f.jb, 1);
        f.started = true;
        swapcontext(&b.entry, &f.ctx);  // FiberMain; it comes back with _longjmp
      }
    }
    unsigned done = 0, at_block = 0;
    bool released = false;
    for (unsigned w = 0; w * 32 < threads; ++w) {
      unsigned live = 0, at_warp = 0;
      for (unsigned t = w * 32; t < std::min(threads, w * 32 + 32); ++t) {
        const Fiber::State s = fibers[t]->state;
        done += s == Fiber::kDone;
        at_block += s == Fiber::kAtBlockBarrier;
        live += s != Fiber::kDone;
        at_warp += s == Fiber::kAtWarpBarrier;
      }
      if (at_warp > 0 && at_warp == live) {
        for (unsigned t = w * 32; t < std::min(threads, w * 32 + 32); ++t) fibers[t]->state = Fiber::kRunnable;
        released = true;
      }
    }
    if (done == threads) return;
    if (!released && at_block > 0 && at_block + done == threads) {
      for (unsigned t = 0; t < threads; ++t) {
        if (fibers[t]->state == Fiber::kAtBlockBarrier) fibers[t]->state = Fiber::kRunnable;
      }
      released = true;
    }
    if (!released) {
      std::fprintf(stderr, "CUDA emulator: block (%u, %u): threads wait at barriers no thread can pass\n", blockIdx.x,
                   blockIdx.y);
      std::abort();
    }
  }
}

template <typename... Params>
struct Launcher {
  void (*kernel)(Params...);
  dim3 grid, threads;
  template <typename... Args>
  void operator()(Args&&... args) const {
    std::tuple<Params...> params(std::forward<Args>(args)...);
    Block b;
    b.slots.resize(threads.x);
    b.body = [&] { std::apply(kernel, params); };
    Block* outer = block;
    block = &b;
    blockDim = threads;
    gridDim = grid;
    for (unsigned y = 0; y < grid.y; ++y) {
      for (unsigned x = 0; x < grid.x; ++x) {
        blockIdx = dim3(x, y);
        RunBlock(b, threads.x);
      }
    }
    block = outer;
  }
};

template <typename... Params>
Launcher<Params...> Launch(void (*kernel)(Params...), dim3 grid, dim3 threads, size_t, void*) {
  return Launcher<Params...>{kernel, grid, threads};
}

}  // namespace emu

inline void __syncthreads() { emu::Wait(emu::Fiber::kAtBlockBarrier); }
inline void __syncwarp(unsigned = 0xFFFFFFFFu) { emu::Wait(emu::Fiber::kAtWarpBarrier); }
inline float __shfl_xor_sync(unsigned, float v, int lane_mask) {
  emu::Block& b = *emu::block;
  const unsigned me = threadIdx.x, base = me / 32 * 32;
  b.slots[me] = v;
  __syncwarp();
  const float got = b.slots[base + ((me - base) ^ static_cast<unsigned>(lane_mask))];
  __syncwarp();
  return got;
}

template <typename T>
inline T __ldg(const T* p) {
  return *p;
}
inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, 4);
  return u;
}

// --- fp16 / bf16 ----------------------------------------------------------------------------------
struct __half {
  unsigned short bits;
};
inline __half __ushort_as_half(unsigned short b) { return __half{b}; }
inline float __half2float(__half h) {
  const unsigned sign = (h.bits & 0x8000u) << 16, e = (h.bits >> 10) & 0x1F, m = h.bits & 0x3FF;
  float f;
  if (e == 0) {
    f = std::ldexp(static_cast<float>(m), -24);
  } else if (e == 31) {
    f = m ? NAN : INFINITY;
  } else {
    f = std::ldexp(static_cast<float>(m | 0x400), static_cast<int>(e) - 25);
  }
  return sign ? -f : f;
}
struct __nv_bfloat16 {
  unsigned short bits;
};
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  const unsigned u = __float_as_uint(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return __nv_bfloat16{static_cast<unsigned short>((u >> 16) | 0x40)};
  return __nv_bfloat16{static_cast<unsigned short>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16)};
}
inline float __bfloat162float(__nv_bfloat16 b) { return __uint_as_float(static_cast<unsigned>(b.bits) << 16); }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 b) { return b.bits; }

// --- runtime API ----------------------------------------------------------------------------------
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorNoDevice = 100,
};
using cudaStream_t = struct CUstream_st*;
using cudaEvent_t = struct CUevent_st*;
using cudaMemPool_t = struct CUmemPool_st*;
enum cudaMemcpyKind { cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2 };
enum cudaDeviceAttr { cudaDevAttrMemoryPoolsSupported = 115 };
enum cudaMemPoolAttr {
  cudaMemPoolAttrReleaseThreshold = 4,
  cudaMemPoolAttrReservedMemCurrent = 5,
  cudaMemPoolAttrUsedMemCurrent = 7,
};
constexpr unsigned cudaStreamNonBlocking = 1, cudaEventDisableTiming = 2, cudaHostAllocDefault = 0;
struct cudaDeviceProp {
  char name[256];
  int major, minor, multiProcessorCount;
  size_t totalGlobalMem;
};

namespace emu {
inline constexpr size_t kMemory = size_t{16} << 30;
inline void* Allocate(size_t bytes) {
  if (bytes > kMemory) return nullptr;
  return std::aligned_alloc(256, (std::max<size_t>(bytes, 1) + 255) / 256 * 256);
}
}  // namespace emu

inline const char* cudaGetErrorName(cudaError_t e) { return e == cudaSuccess ? "cudaSuccess" : "cudaErrorEmulated"; }
inline const char* cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : "emulated error"; }
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int) {
  std::strcpy(p->name, "CUDA emulator");
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = 132;
  p->totalGlobalMem = emu::kMemory;
  return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int) { return cudaSuccess; }
inline cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr, int) {
  *v = 1;
  return cudaSuccess;
}
inline cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int) {
  static int the_pool;
  *pool = reinterpret_cast<cudaMemPool_t>(&the_pool);
  return cudaSuccess;
}
inline cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t, cudaMemPoolAttr, void*) { return cudaSuccess; }
inline cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t, cudaMemPoolAttr, void* v) {
  *static_cast<uint64_t*>(v) = 0;
  return cudaSuccess;
}
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  *s = reinterpret_cast<cudaStream_t>(new int);
  return cudaSuccess;
}
inline cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete reinterpret_cast<int*>(s);
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) {
  *e = reinterpret_cast<cudaEvent_t>(new int);
  return cudaSuccess;
}
inline cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete reinterpret_cast<int*>(e);
  return cudaSuccess;
}
inline cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
inline cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = emu::Allocate(bytes);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
inline cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t) { return cudaMalloc(p, bytes); }
inline cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
inline cudaError_t cudaFreeAsync(void* p, cudaStream_t) { return cudaFree(p); }
inline cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned) { return cudaMalloc(p, bytes); }
inline cudaError_t cudaFreeHost(void* p) { return cudaFree(p); }
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind, cudaStream_t) {
  std::memcpy(dst, src, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
  *free_bytes = emu::kMemory / 2;
  *total = emu::kMemory;
  return cudaSuccess;
}
