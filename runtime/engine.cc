// The generation engine: loads a model, owns its tokenizer and chat template, and runs a
// scheduler thread that batches every active request into one forward pass per step (prompt
// chunks of new requests together with one token of each decoding request).
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/json_limits.h"
#include "base/log.h"
#include "runtime/backend.h"
#include "runtime/config.h"
#include "runtime/jinja/jinja.h"
#include "runtime/model.h"
#include "runtime/sampler.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/weights.h"

namespace hubnode::runtime {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct Active {
  GenerateRequest req;
  std::unique_ptr<KvCache> cache;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<DecodeStream> decoder;
  std::unique_ptr<StopFilter> stop;
  size_t prefilled = 0;  // prompt tokens already in the cache
  int32_t next = -1;     // the sampled token to feed next (decode phase)
  int generated = 0;
  int limit = 0;         // tokens this request may generate (max_tokens, capped by the context)
  std::vector<PromptLogprob> prompt_lps;  // gathered while prefilling, when asked for
};

// Reads the chat template: chat_template.jinja wins over tokenizer_config.json's
// chat_template (a string, or a list of {name, template} where "default" is used).
std::string ChatTemplateSource(TensorSource& source, const std::string& tokenizer_config) {
  if (auto file = source.ReadFile("chat_template.jinja"); file.ok()) return *file;
  json cfg = (JsonDepthWithin(tokenizer_config) ? json::parse(tokenizer_config, nullptr, false) : json(json::value_t::discarded));
  if (cfg.is_discarded() || !cfg.is_object()) return "";
  auto it = cfg.find("chat_template");
  if (it == cfg.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    for (const json& t : *it) {
      if (t.is_object() && t.value("name", "") == "default" && t.contains("template") && t["template"].is_string()) {
        return t["template"].get<std::string>();
      }
    }
  }
  return "";
}

// The backend `options` ask for: kAuto takes a CUDA device when there is one, else the CPU.
Result<std::unique_ptr<Backend>> MakeBackend(const EngineOptions& options) {
  if (options.backend == BackendKind::kCpu) return MakeCpuBackend(options.threads, options.matmul_precision);
  auto gpu = MakeCudaBackend(options.gpu_device, options.matmul_precision);
  if (gpu.ok() || options.backend == BackendKind::kCuda) return gpu;
  return MakeCpuBackend(options.threads, options.matmul_precision);
}

class EngineImpl final : public Engine {
 public:
  EngineImpl(std::unique_ptr<TensorSource> source, const EngineOptions& options)
      : source_(std::move(source)), options_(options) {}

  ~EngineImpl() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    if (scheduler_.joinable()) scheduler_.join();
  }

  Status Init() {
    ASSIGN_OR_RETURN(std::string config_json, source_->ReadFile("config.json"));
    std::string generation = source_->ReadFile("generation_config.json").value_or("");
    ASSIGN_OR_RETURN(config_, ParseModelConfig(config_json, generation));
    ASSIGN_OR_RETURN(std::string tokenizer_json, source_->ReadFile("tokenizer.json"));
    std::string tokenizer_config = source_->ReadFile("tokenizer_config.json").value_or("");
    auto tok = Tokenizer::FromJson(tokenizer_json, tokenizer_config);
    if (!tok.ok()) return tok.status().WithContext("tokenizer.json");
    tokenizer_ = std::make_unique<Tokenizer>(std::move(*tok));
    if (tokenizer_->eos_id() >= 0 && std::find(config_.eos_ids.begin(), config_.eos_ids.end(), tokenizer_->eos_id()) == config_.eos_ids.end()) {
      config_.eos_ids.push_back(tokenizer_->eos_id());
    }
    if (std::string src = ChatTemplateSource(*source_, tokenizer_config); !src.empty()) {
      auto tmpl = jinja::Template::Parse(src);
      if (!tmpl.ok()) return tmpl.status().WithContext("chat template");
      template_ = std::make_unique<jinja::Template>(std::move(*tmpl));
    }
    ASSIGN_OR_RETURN(std::vector<TensorDesc> tensors, source_->ListTensors());
    ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, MakeBackend(options_));
    const bool device = !backend->host_memory();
    if (Status s = LoadWeights(std::move(backend), tensors); !s.ok()) {
      // --backend auto: a model the GPU cannot hold runs on the CPU rather than not at all.
      if (!device || options_.backend != BackendKind::kAuto || s.code() != StatusCode::kResourceExhausted) return s;
      LOG(Warning) << "the GPU cannot hold this model (" << s.ToString() << "); running it on the CPU";
      experts_.reset();
      weights_.reset();
      backend_.reset();
      RETURN_IF_ERROR(LoadWeights(MakeCpuBackend(options_.threads, options_.matmul_precision), tensors));
    }
    model_ = std::make_unique<Model>(config_, *backend_, *weights_, experts_.get(), options_.prefetch, options_.on_routing);
    info_.architecture = config_.model_type;
    info_.layers = config_.layers;
    info_.hidden = config_.hidden;
    info_.experts = config_.experts;
    info_.top_k = config_.top_k;
    info_.vocab = config_.vocab;
    // Dynamic NTK scaling exists to run past the trained length, by up to its factor.
    const int trained = config_.rope.type == RopeType::kDynamic
                            ? static_cast<int>(std::min<double>(config_.max_position * config_.rope.factor, 1 << 24))
                            : config_.max_position;
    info_.max_context = options_.max_context > 0 ? std::min(options_.max_context, trained) : std::min(trained, 4096);
    info_.resident_bytes = weights_->bytes;
    info_.backend = std::string(backend_->name()) + "/" + std::string(backend_->device());
    uint64_t moe_layers = 0;
    for (int l = 0; l < config_.layers; ++l) moe_layers += config_.IsMoeLayer(l);
    const uint64_t per_expert = config_.experts && moe_layers ? info_.expert_bytes / (moe_layers * config_.experts) : 0;
    const uint64_t embed_row = weights_->embed.cols * DTypeSize(weights_->embed.dtype);
    const uint64_t embed_bytes = weights_->embed.rows * embed_row;
    const uint64_t resident_read = weights_->lm_head.data == weights_->embed.data ? weights_->bytes : weights_->bytes - embed_bytes;
    info_.active_bytes_per_token = resident_read + embed_row + moe_layers * config_.top_k * per_expert;
    scheduler_ = std::thread([this] { Loop(); });
    return OkStatus();
  }

  const ModelInfo& info() const override { return info_; }

  std::vector<int32_t> Tokenize(std::string_view text, bool add_special_tokens) const override {
    return tokenizer_->Encode(text, add_special_tokens);
  }
  std::string Detokenize(std::span<const int32_t> ids) const override { return tokenizer_->Decode(ids, false); }

  Result<std::string> ApplyChatTemplate(const std::vector<ChatMessage>& messages,
                                        bool add_generation_prompt) const override {
    if (!template_) return InvalidArgumentError("the model has no chat template");
    nlohmann::ordered_json ctx;  // ordered: tojson keeps the client's key order
    ctx["messages"] = nlohmann::ordered_json::array();
    for (const ChatMessage& m : messages) {
      nlohmann::ordered_json msg = nlohmann::ordered_json::object();
      if (!m.extra_json.empty()) {
        msg = nlohmann::ordered_json::parse(m.extra_json, nullptr, false);
        if (msg.is_discarded() || !msg.is_object()) return InvalidArgumentError("message fields are not a JSON object");
      }
      msg["role"] = m.role;
      msg["content"] = m.content;
      ctx["messages"].push_back(std::move(msg));
    }
    ctx["add_generation_prompt"] = add_generation_prompt;
    ctx["bos_token"] = std::string(tokenizer_->bos_token());
    ctx["eos_token"] = std::string(tokenizer_->eos_token());
    return template_->Render(ctx);
  }

  Status Submit(GenerateRequest request) override {
    RETURN_IF_ERROR(ValidateSamplingParams(request.sampling));
    if (request.prompt.empty()) return InvalidArgumentError("the prompt is empty");
    if (static_cast<int>(request.prompt.size()) >= info_.max_context) {
      return InvalidArgumentError("the prompt has " + std::to_string(request.prompt.size()) +
                                  " tokens; the context is " + std::to_string(info_.max_context));
    }
    for (int32_t t : request.prompt) {
      if (t < 0 || t >= config_.vocab) return InvalidArgumentError("token id " + std::to_string(t) + " is out of range");
    }
    if (!request.on_event) return InvalidArgumentError("no callback");
    {
      std::lock_guard lock(mu_);
      if (static_cast<int>(queue_.size()) >= options_.max_queue) return ResourceExhaustedError("too many queued requests");
      queue_.push_back(std::move(request));
    }
    wake_.notify_one();
    return OkStatus();
  }

  Result<LogitsTrace> TraceLogits(std::span<const int32_t> prompt, int steps) override {
    if (prompt.empty() || static_cast<int>(prompt.size()) + steps > info_.max_context) {
      return InvalidArgumentError("prompt plus steps must fit the context");
    }
    std::lock_guard lock(model_mu_);
    ASSIGN_OR_RETURN(auto cache, KvCache::Create(*backend_, config_, static_cast<int>(prompt.size()) + steps));
    LogitsTrace trace;
    const SeqInput in{cache.get(), prompt, 0, true};
    ASSIGN_OR_RETURN(std::vector<float> all, model_->Forward({&in, 1}));
    const size_t V = config_.vocab;
    for (size_t i = 0; i < prompt.size(); ++i) trace.prefill.emplace_back(all.begin() + i * V, all.begin() + (i + 1) * V);
    std::vector<float> last = trace.prefill.back();
    for (int s = 0; s < steps; ++s) {
      const int32_t t = static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
      trace.tokens.push_back(t);
      const SeqInput step{cache.get(), {&trace.tokens.back(), 1}, static_cast<int32_t>(prompt.size()) + s, false};
      ASSIGN_OR_RETURN(last, model_->Forward({&step, 1}));
      trace.decode.push_back(last);
    }
    return trace;
  }

  // The resident weights and the expert cache on `backend`.
  Status LoadWeights(std::unique_ptr<Backend> backend, const std::vector<TensorDesc>& tensors) {
    backend_ = std::move(backend);
    ASSIGN_OR_RETURN(weights_, ModelWeights::Load(*source_, *backend_, config_, tensors));
    if (config_.experts > 0) {
      // On a GPU the cache holds experts in device memory, within the GPU's budget (by default
      // what the GPU has free after the resident weights, less room for activations and KV
      // caches). Below it, host memory keeps the images of experts loaded before (as held: read
      // and converted once) within the CPU's budget, all of them by default.
      const bool host = backend_->host_memory();
      uint64_t budget = host ? options_.expert_budget_bytes : options_.gpu_expert_budget_bytes;
      if (!host && budget == 0) {
        const uint64_t free = backend_->free_memory();
        const uint64_t reserve = std::max<uint64_t>(uint64_t{1} << 30, free / 8);
        budget = free > reserve ? free - reserve : 1;
      }
      const uint64_t tier = options_.expert_budget_bytes ? options_.expert_budget_bytes : UINT64_MAX;
      experts_ = std::make_unique<ExpertCache>(*source_, *backend_, config_, tensors, budget, options_.expert_dtype,
                                               host ? 0 : tier);
      info_.expert_dtype = std::string(ExpertDTypeName(options_.expert_dtype));
      ASSIGN_OR_RETURN(info_.expert_bytes, experts_->Validate());
    }
    return OkStatus();
  }

  Status Health() const override { return backend_ ? backend_->Check() : OkStatus(); }

  EngineStats stats() const override {
    EngineStats s;
    {
      std::lock_guard lock(mu_);
      s = stats_;
      s.queued_requests = static_cast<int>(queue_.size());
    }
    if (experts_) {
      const ExpertCacheStats e = experts_->stats();
      s.expert_hits = e.hits;
      s.expert_misses = e.misses;
      s.expert_prefetches = e.prefetches;
      s.expert_evictions = e.evictions;
      s.expert_bytes_loaded = e.bytes_loaded;
      s.expert_load_seconds = e.load_seconds;
      s.expert_resident_bytes = e.resident_bytes;
      s.expert_budget_bytes = experts_->budget();
      s.expert_prefetch_requests = e.prefetch_requests;
      s.expert_prefetch_present = e.prefetch_present;
      s.expert_prefetch_hits = e.prefetch_hits;
      s.expert_prefetch_dropped = e.prefetches_dropped;
      s.expert_host_tier_hits = e.host_tier_hits;
      s.expert_host_tier_bytes = e.host_tier_bytes;
    }
    const PredictionStats p = model_->prediction_stats();
    s.predicted_experts = p.predicted;
    s.predicted_layer_routed = p.routed;
    s.predicted_correct = p.correct;
    return s;
  }

 private:
  // Admits queued requests up to max_batch; those that cannot get a cache fail at once.
  void Admit(std::vector<std::unique_ptr<Active>>& active) {
    std::vector<GenerateRequest> admitted;
    {
      std::lock_guard lock(mu_);
      while (!queue_.empty() && static_cast<int>(active.size() + admitted.size()) < options_.max_batch) {
        admitted.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    for (GenerateRequest& req : admitted) {
      auto a = std::make_unique<Active>();
      const int prompt = static_cast<int>(req.prompt.size());
      a->limit = std::min(req.sampling.max_tokens, info_.max_context - prompt);
      auto cache = KvCache::Create(*backend_, config_, prompt + a->limit);
      if (!cache.ok()) {
        TokenEvent ev;
        ev.finish = FinishReason::kError;
        ev.error = cache.status();
        req.on_event(ev);
        continue;
      }
      a->cache = std::move(*cache);
      a->sampler = std::make_unique<Sampler>(req.sampling);
      a->decoder = std::make_unique<DecodeStream>(*tokenizer_, true);
      a->stop = std::make_unique<StopFilter>(req.sampling.stop);
      a->req = std::move(req);
      active.push_back(std::move(a));
    }
  }

  TokenLogprob Describe(int32_t id, float logprob) const {
    return TokenLogprob{id, tokenizer_->Decode({&id, 1}, false), tokenizer_->TokenBytes(id), logprob};
  }

  // Records the log-prob of each prompt token a prefill chunk's rows predict (row k of a chunk
  // starting at `from` predicts prompt token from + k + 1).
  void GatherPromptLogprobs(Active& a, size_t from, size_t take, const float* rows) {
    const auto& prompt = a.req.prompt;
    const int top = std::max(a.req.sampling.top_logprobs, 0);
    if (from == 0) a.prompt_lps.push_back({Describe(prompt[0], 0), false, {}});
    for (size_t k = 0; k < take && from + k + 1 < prompt.size(); ++k) {
      std::span<const float> row(rows + k * config_.vocab, size_t(config_.vocab));
      const int32_t next = prompt[from + k + 1];
      PromptLogprob p{Describe(next, Sampler::Logprob(row, next)), true, {}};
      for (const auto& [id, lp] : Sampler::TopLogprobs(row, top)) p.top.push_back(Describe(id, lp));
      a.prompt_lps.push_back(std::move(p));
    }
  }

  // Handles a request's logits row: samples, reports, and says whether it goes on.
  bool Emit(Active& a, std::span<const float> logits) {
    const SamplingParams& sp = a.req.sampling;
    const int32_t token = a.sampler->Sample(logits);
    ++a.generated;
    {
      std::lock_guard lock(mu_);
      ++stats_.generated_tokens;
    }
    TokenEvent ev;
    ev.token = token;
    ev.prompt_tokens = static_cast<int>(a.req.prompt.size());
    ev.completion_tokens = a.generated;
    const bool eos = !sp.ignore_eos && std::find(config_.eos_ids.begin(), config_.eos_ids.end(), token) != config_.eos_ids.end();
    if (sp.top_logprobs >= 0) {
      ev.logprob = Describe(token, Sampler::Logprob(logits, token));
      for (const auto& [id, lp] : Sampler::TopLogprobs(logits, sp.top_logprobs)) ev.top_logprobs.push_back(Describe(id, lp));
    }
    if (a.generated == 1) ev.prompt_logprobs = std::move(a.prompt_lps);
    if (eos) {
      ev.text = a.stop->Push(a.decoder->Flush()) + a.stop->Flush();
      ev.finish = FinishReason::kStop;
    } else {
      ev.text = a.stop->Push(a.decoder->Next(token));
      if (a.stop->stopped()) {
        ev.finish = FinishReason::kStop;
      } else if (a.generated >= a.limit) {
        ev.text += a.stop->Push(a.decoder->Flush());
        if (!a.stop->stopped()) ev.text += a.stop->Flush();
        ev.finish = a.stop->stopped() ? FinishReason::kStop : FinishReason::kLength;
      }
    }
    a.next = token;
    const bool keep = a.req.on_event(ev);
    return keep && ev.finish == FinishReason::kNone;
  }

  void Loop() {
    std::vector<std::unique_ptr<Active>> active;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        wake_.wait(lock, [&] { return stop_ || !queue_.empty() || !active.empty(); });
        if (stop_) break;
      }
      Admit(active);
      if (active.empty()) continue;
      // One batch: a prompt chunk of each prefilling request, the last token of each decoder.
      std::vector<SeqInput> batch;
      int budget = options_.prefill_chunk;
      int64_t prompt_tokens = 0, decode_tokens = 0;
      for (auto& a : active) {
        if (a->prefilled < a->req.prompt.size()) {
          const size_t take = std::min<size_t>(a->req.prompt.size() - a->prefilled, std::max(budget, 1));
          budget -= static_cast<int>(take);
          batch.push_back({a->cache.get(), {a->req.prompt.data() + a->prefilled, take}, static_cast<int32_t>(a->prefilled),
                           a->req.sampling.prompt_logprobs});
          prompt_tokens += take;
        } else {
          batch.push_back({a->cache.get(), {&a->next, 1}, static_cast<int32_t>(a->req.prompt.size()) + a->generated - 1, false});
          ++decode_tokens;
        }
      }
      const auto start = Clock::now();
      Result<std::vector<float>> logits = [&] {
        std::lock_guard lock(model_mu_);
        return model_->Forward(batch);
      }();
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      {
        std::lock_guard lock(mu_);
        stats_.prompt_tokens += prompt_tokens;
        stats_.decode_tokens += decode_tokens;
        (prompt_tokens > 0 ? stats_.prefill_seconds : stats_.decode_seconds) += seconds;
      }
      std::vector<std::unique_ptr<Active>> next;
      size_t row = 0;  // the first logits row of sequence i (several when it asked for all)
      for (size_t i = 0; i < active.size(); ++i) {
        const size_t rows = batch[i].all_logits ? batch[i].tokens.size() : 1;
        const size_t first_row = row;
        row += rows;
        Active& a = *active[i];
        if (!logits.ok()) {
          TokenEvent ev;
          ev.finish = FinishReason::kError;
          ev.error = logits.status();
          a.req.on_event(ev);
          continue;
        }
        bool keep = true;
        const bool was_prefill = a.prefilled < a.req.prompt.size();
        if (was_prefill && batch[i].all_logits) {
          GatherPromptLogprobs(a, a.prefilled, batch[i].tokens.size(), logits->data() + first_row * config_.vocab);
        }
        if (was_prefill) a.prefilled += batch[i].tokens.size();
        if (!was_prefill || a.prefilled == a.req.prompt.size()) {
          keep = Emit(a, {logits->data() + (first_row + rows - 1) * config_.vocab, size_t(config_.vocab)});
        }
        if (keep) next.push_back(std::move(active[i]));
      }
      active = std::move(next);
      std::lock_guard lock(mu_);
      stats_.active_requests = static_cast<int>(active.size());
    }
    for (auto& a : active) {
      TokenEvent ev;
      ev.finish = FinishReason::kCancelled;
      a->req.on_event(ev);
    }
  }

  std::unique_ptr<TensorSource> source_;
  EngineOptions options_;
  ModelConfig config_;
  ModelInfo info_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<jinja::Template> template_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<ModelWeights> weights_;
  std::unique_ptr<ExpertCache> experts_;
  std::unique_ptr<Model> model_;

  std::mutex model_mu_;  // one forward pass at a time
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<GenerateRequest> queue_;
  EngineStats stats_;
  bool stop_ = false;
  std::thread scheduler_;
};

}  // namespace

Result<std::unique_ptr<Engine>> Engine::Load(std::unique_ptr<TensorSource> source, const EngineOptions& options) {
  if (options.max_batch < 1 || options.max_queue < 0 || options.prefill_chunk < 1) {
    return InvalidArgumentError("engine options out of range");
  }
  auto engine = std::make_unique<EngineImpl>(std::move(source), options);
  RETURN_IF_ERROR(engine->Init());
  return std::unique_ptr<Engine>(std::move(engine));
}

size_t DTypeSize(DType d) {
  switch (d) {
    case DType::kF32: return 4;
    case DType::kF16:
    case DType::kBF16: return 2;
    default: return 1;
  }
}

uint64_t DTypeBytes(DType d, uint64_t elements) {
  return d == DType::kI4 ? (elements + 1) / 2 : elements * DTypeSize(d);
}

std::string_view DTypeName(DType d) {
  switch (d) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kF8E4M3: return "F8_E4M3";
    case DType::kI8: return "I8";
    case DType::kI4: return "I4";
  }
  return "";
}

bool IsBlockScaled(DType d) { return d == DType::kF8E4M3 || d == DType::kI8 || d == DType::kI4; }

uint64_t TensorDesc::bytes() const {
  uint64_t n = 1;
  for (int64_t s : shape) n *= static_cast<uint64_t>(s);
  return DTypeBytes(dtype, n);
}

bool ParseBackendKind(std::string_view text, BackendKind* out) {
  if (text == "cpu") {
    *out = BackendKind::kCpu;
  } else if (text == "cuda") {
    *out = BackendKind::kCuda;
  } else if (text == "auto") {
    *out = BackendKind::kAuto;
  } else {
    return false;
  }
  return true;
}

std::string_view FinishReasonName(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
    default: return "";
  }
}

}  // namespace hubnode::runtime
