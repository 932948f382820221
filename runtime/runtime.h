// The runtime: Mixture-of-Experts (and dense) decoder inference over weights read through a
// TensorSource, with an OpenAI-style generation engine on top.
//
// A model is loaded from a TensorSource (hub implements it with the store: no export to disk).
// Non-expert weights stay resident in their stored dtype; routed experts live in an expert cache
// with a byte budget and least-often-used eviction, loaded through the source on a miss, and the next layer's
// likely experts are prefetched while the current layer runs. Computation is fp32 on a Backend
// (runtime/backend.h: the CPU backend is the complete reference).
//
// Thread safety: a TensorSource must allow concurrent calls. Engine is thread-safe: any thread may
// Submit(); the engine's scheduler thread batches all active requests into one forward pass per
// step and calls each request's callback from that thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace hubnode::runtime {

// Weight element types. kF8E4M3, kI8 and kI4 are block-scaled: a weight of one of them comes with
// f32 scales, one per block of rows × columns (WeightView::scales), and element (r, c) is its stored
// value times its block's scale.
//   kF8E4M3: float8 e4m3fn (1 sign, 4 exponent bits with bias 7, 3 mantissa bits, no infinities,
//            S.1111.111 = NaN), as DeepSeek-V3 ships its weights (128 × 128 blocks, the scale being
//            its `weight_scale_inv` tensor) or quantized at load (runtime/quant.h).
//   kI8:     int8, symmetric (scale = absmax / 127), quantized at load.
//   kI4:     4-bit, two per byte (element 2i in the low nibble), value = nibble - 8, symmetric
//            (scale = absmax / 7), quantized at load; rows have an even number of columns.
enum class DType { kF32, kF16, kBF16, kF8E4M3, kI8, kI4 };

// How products of bf16 weights treat the fp32 activations (docs/runtime.md "Matrix precision").
//   kFp32:   fp32 arithmetic (the weight converted to fp32); the reference.
//   kBf16x2: each activation split into two bf16 (hi + lo: ~16 significant bits), bf16 products
//            accumulated in fp32 (AMX); relative error ~1e-5 of a product's terms.
//   kBf16:   activations rounded to bf16 (8 significant bits), as llama.cpp's bf16 path; faster,
//            ~3e-3 relative error per term: a stated option, never chosen by kAuto.
//   kAuto:   kBf16x2 where the CPU has AMX-BF16, else kFp32.
// A precision the CPU cannot run (no AMX) falls back to kFp32. fp16 and fp32 weights are always
// computed in fp32.
enum class MatMulPrecision { kAuto, kFp32, kBf16x2, kBf16 };
// "auto", "fp32", "bf16x2", "bf16"; false for anything else.
bool ParseMatMulPrecision(std::string_view text, MatMulPrecision* out);
std::string_view MatMulPrecisionName(MatMulPrecision p);

// Bytes of one element (1 for kI4, which packs two: use DTypeBytes for sizes).
size_t DTypeSize(DType dtype);
// Bytes of `elements` elements (kI4: rounded up to whole bytes).
uint64_t DTypeBytes(DType dtype, uint64_t elements);
// "F32", "F16", "BF16", "F8_E4M3", "I8", "I4" (the safetensors names, I4 our own).
std::string_view DTypeName(DType dtype);
bool IsBlockScaled(DType dtype);

// The dtype the expert cache holds routed experts in (`--expert-dtype`). kStored keeps the
// checkpoint's (bf16, or DeepSeek-V3's float8 with its 128 × 128 block scales); the others
// convert each expert as it loads (runtime/quant.h formats: fp8 and int8 with one scale per 128
// columns of a row, int4 per 32). docs/runtime-quant.md has the measured costs.
enum class ExpertDType { kStored, kBf16, kFp8, kInt8, kInt4 };
// "stored", "bf16", "fp8", "int8", "int4"; false for anything else.
bool ParseExpertDType(std::string_view text, ExpertDType* out);
std::string_view ExpertDTypeName(ExpertDType d);

// Which backend computes (`--backend`): the CPU, a CUDA GPU, or kAuto: CUDA when this binary has it
// and a device is present, else the CPU.
enum class BackendKind { kCpu, kCuda, kAuto };
// "cpu", "cuda", "auto"; false for anything else.
bool ParseBackendKind(std::string_view text, BackendKind* out);

struct TensorDesc {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t bytes() const;
};

// Where a model's files and tensors come from. Implementations: the store
// (hub/serve/store_source.cc), later peers.
class TensorSource {
 public:
  virtual ~TensorSource() = default;
  // A small file of the model (config.json, tokenizer.json, ...). NotFound when absent.
  // REQUIRES: the file fits in memory; implementations cap it (InvalidArgument above the cap).
  virtual Result<std::string> ReadFile(std::string_view path) = 0;
  // Every tensor of the checkpoint. Unsupported dtypes are reported as InvalidArgument by the
  // implementation only when such a tensor is read; listing reports them with `dtype_name`.
  virtual Result<std::vector<TensorDesc>> ListTensors() = 0;
  // Reads the whole tensor's bytes into `out` (exactly desc.bytes() long).
  // NotFound for an unknown name; DataLoss when the bytes cannot be read intact.
  virtual Status ReadTensor(std::string_view name, std::span<uint8_t> out) = 0;
};

// The experts one MoE layer of a forward pass routed its tokens to, with the experts predicted for
// the next MoE layer from this layer's hidden state (layer + 1's router applied to it: what the
// expert cache is asked to prefetch). For measurements: `hubnode run --routing-trace`.
// The spans are valid during the call only.
struct RoutingEvent {
  int layer = 0;  // the MoE layer that routed
  int top_k = 0;
  // Each token's position in its sequence; the tokens of a batch's sequences follow each other.
  std::span<const int32_t> positions;
  // tokens × top_k: each token's experts at `layer`, most weighted first.
  std::span<const int32_t> routed;
  // tokens × top_k: each token's predicted experts for layer + 1, most likely first; empty when no
  // prediction was made (the last layer, or a dense layer next).
  std::span<const int32_t> predicted;
};

struct EngineOptions {
  // The backend. Default: the CPU.
  BackendKind backend = BackendKind::kCpu;
  // The CUDA device a kCuda/kAuto backend uses. Default: 0.
  int gpu_device = 0;
  // Bytes the routed experts may occupy in GPU memory when a CUDA backend runs the model (in place
  // of expert_budget_bytes, which is the CPU's); 0 = all experts. Default: 0.
  uint64_t gpu_expert_budget_bytes = 0;
  // Compute threads (the CPU backend). Default: 0 = hardware concurrency.
  int threads = 0;
  // Bytes the routed experts may occupy in memory; 0 = all experts fit (no eviction).
  // Default: 0.
  uint64_t expert_budget_bytes = 0;
  // Predict and load the next layer's experts while the current layer runs. Default: true.
  bool prefetch = true;
  // Longest sequence (prompt + generated) per request; 0 = the model's max_position_embeddings
  // capped at 4096. Default: 0.
  int max_context = 0;
  // Requests decoded together in one step; more wait in a queue. Default: 8.
  int max_batch = 8;
  // Requests allowed to wait in the queue; more are ResourceExhausted. Default: 64.
  int max_queue = 64;
  // Tokens of prompt processed per step for one request (prefill is batched in chunks of this).
  // Default: 256.
  int prefill_chunk = 256;
  // How products of bf16 weights treat activations (backend.h MatMulPrecision). Default: auto.
  MatMulPrecision matmul_precision = MatMulPrecision::kAuto;
  // The dtype routed experts are held in; a budget counts the converted bytes. Default: stored.
  ExpertDType expert_dtype = ExpertDType::kStored;
  // Called for every MoE layer of every forward pass with the experts it routed to, from the
  // thread running the pass (the scheduler, or TraceLogits' caller); it must not call back into
  // the engine. When set, the next layer's experts are predicted even with `prefetch` off (then
  // only reported, not loaded). Default: empty (nothing recorded, nothing extra computed).
  std::function<void(const RoutingEvent&)> on_routing;
};

struct SamplingParams {
  // 0 = greedy. Default: 1.
  float temperature = 1.0f;
  // Nucleus mass in (0, 1]. Default: 1.
  float top_p = 1.0f;
  // 0 = off. Default: 0.
  int top_k = 0;
  // Random seed; requests with the same seed and prompt sample the same tokens. Default: 0.
  uint64_t seed = 0;
  // Tokens to generate at most. Default: 16.
  int max_tokens = 16;
  // Generation stops before any of these strings; the text returned excludes it.
  std::vector<std::string> stop;
  // Keep generating past end-of-sequence tokens. Default: false.
  bool ignore_eos = false;
  // Number of most likely alternatives to report per token (0..20); -1 = no logprobs.
  int top_logprobs = -1;
  // Also report the log-prob of every prompt token after the first (with top_logprobs
  // alternatives), on the first event: what OpenAI's legacy completions give with echo.
  bool prompt_logprobs = false;
};

// InvalidArgument naming the parameter when a value is out of range.
Status ValidateSamplingParams(const SamplingParams& params);

// Whether config.json describes an architecture this runtime runs (a cheap check for listings).
bool IsSupportedConfig(std::string_view config_json);

struct TokenLogprob {
  int32_t token = 0;
  std::string text;   // the token decoded alone (valid UTF-8: a partial character is U+FFFD)
  std::string bytes;  // the raw bytes it stands for (a partial character's own bytes)
  float logprob = 0;
};

// One prompt token, with how likely the model found it after the tokens before it (none for the
// first token).
struct PromptLogprob {
  TokenLogprob token;
  bool has_logprob = false;
  std::vector<TokenLogprob> top;
};

enum class FinishReason { kNone, kStop, kLength, kCancelled, kError };
std::string_view FinishReasonName(FinishReason reason);  // "stop", "length", ...

// One step of a request, delivered to its callback.
struct TokenEvent {
  int32_t token = -1;            // -1 on the final event when nothing was generated this step
  std::string text;              // newly final text (stop strings already cut)
  std::optional<TokenLogprob> logprob;
  std::vector<TokenLogprob> top_logprobs;
  std::vector<PromptLogprob> prompt_logprobs;  // on the first event, when asked for
  FinishReason finish = FinishReason::kNone;  // set on the last event
  Status error;                               // set when finish == kError
  int prompt_tokens = 0;
  int completion_tokens = 0;
};

struct GenerateRequest {
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  // Called from the engine thread for each event; return false to cancel (e.g. the client left).
  // The last call has finish != kNone.
  std::function<bool(const TokenEvent&)> on_event;
};

struct ChatMessage {
  std::string role;
  std::string content;
  // Further fields of the message (tool_calls, name, reasoning_content ...) as a JSON object
  // text, merged into the message the template sees; empty for none.
  std::string extra_json;
};

struct EngineStats {
  uint64_t expert_hits = 0, expert_misses = 0, expert_prefetches = 0, expert_evictions = 0;
  uint64_t expert_bytes_loaded = 0;
  double expert_load_seconds = 0;
  uint64_t expert_resident_bytes = 0, expert_budget_bytes = 0;
  // A device backend's host tier (EngineOptions::expert_budget_bytes of host memory below the
  // GPU's cache): loads it served, and the bytes it holds.
  uint64_t expert_host_tier_hits = 0, expert_host_tier_bytes = 0;
  // Next-layer predictions (layer l + 1's router on layer l's hidden state), compared per forward
  // pass and MoE layer over the batch's distinct experts: experts predicted for the next layer,
  // experts routed at layers that had a prediction, and experts in both. Precision = correct /
  // predicted, recall = correct / routed. Counted whenever predictions are made (prefetch on, or
  // an on_routing observer).
  uint64_t predicted_experts = 0, predicted_layer_routed = 0, predicted_correct = 0;
  // What the expert cache did with the predictions: experts asked for, already held (or loading),
  // loaded ahead (expert_prefetches), of those used by a step, and not loaded because the cache
  // had no free budget (prefetches never evict).
  uint64_t expert_prefetch_requests = 0, expert_prefetch_present = 0, expert_prefetch_hits = 0,
           expert_prefetch_dropped = 0;
  uint64_t prompt_tokens = 0, generated_tokens = 0;
  // Decode speed: tokens computed by decode steps (the first token of a request comes from its
  // prefill step) over the time of those steps.
  uint64_t decode_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0;
  int active_requests = 0, queued_requests = 0;
};

struct ModelInfo {
  std::string architecture;  // model_type, e.g. "olmoe"
  int layers = 0, hidden = 0, experts = 0, top_k = 0, vocab = 0;
  int max_context = 0;
  uint64_t resident_bytes = 0;  // non-expert weights
  uint64_t expert_bytes = 0;    // all routed experts, as held (EngineOptions::expert_dtype)
  std::string expert_dtype;     // "stored", "int4", ...
  uint64_t active_bytes_per_token = 0;  // weights one decode step reads
  std::string backend;                   // e.g. "cpu/avx512, 2 threads"
};

class Engine {
 public:
  // Loads config.json, the tokenizer and the non-expert weights from `source` and starts the
  // scheduler. InvalidArgument for an unsupported architecture or config field (named);
  // errors of the source are returned as they are.
  static Result<std::unique_ptr<Engine>> Load(std::unique_ptr<TensorSource> source,
                                              const EngineOptions& options);
  virtual ~Engine() = default;

  virtual const ModelInfo& info() const = 0;

  // Tokenizes `text` (special tokens in it are recognised).
  virtual std::vector<int32_t> Tokenize(std::string_view text, bool add_special_tokens) const = 0;
  virtual std::string Detokenize(std::span<const int32_t> ids) const = 0;
  // Renders the chat template with `messages` and returns the prompt text.
  // InvalidArgument when the template raises or the model has no template.
  virtual Result<std::string> ApplyChatTemplate(const std::vector<ChatMessage>& messages,
                                                bool add_generation_prompt) const = 0;

  // Queues a request. InvalidArgument for an empty or too long prompt or bad parameters;
  // ResourceExhausted when the queue is full. The callback is never called when this fails.
  virtual Status Submit(GenerateRequest request) = 0;

  // Logits (vocab floats) for every prompt position, then for `decode_steps` greedy steps,
  // computed without batching; for correctness tests and `hubnode run --dump-logits`.
  struct LogitsTrace {
    std::vector<std::vector<float>> prefill;
    std::vector<int32_t> tokens;
    std::vector<std::vector<float>> decode;
  };
  virtual Result<LogitsTrace> TraceLogits(std::span<const int32_t> prompt, int decode_steps) = 0;

  virtual EngineStats stats() const = 0;

  // OK while the engine can serve; the backend's sticky error once a device failed (a lost GPU):
  // its owner drops the engine and loads the model again (ModelHost does).
  virtual Status Health() const = 0;
};

}  // namespace hubnode::runtime
