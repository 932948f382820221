// `hubnode run` and `hubnode chat`: generation from a stored model on this machine, and the
// runtime flags shared with `serve`.
#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <future>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "base/file.h"
#include "hub/cli/commands.h"
#include "hub/cli/runtime_flags.h"
#include "hub/peer/chunk_maps.h"
#include "hub/peer/remote_source.h"
#include "hub/trust/trust_gate.h"

namespace hubnode::hub {

void AddRuntimeFlags(CLI::App* sub, RuntimeFlags* f) {
  sub->add_option("--backend", f->backend,
                  "What computes: cpu, cuda (an NVIDIA GPU; fails without one) or auto (cuda when this binary has it and "
                  "a device is present, else cpu; default)");
  sub->add_option("--gpu-device", f->gpu_device, "The CUDA device to use (default 0)");
  sub->add_option("--gpu-expert-budget", f->gpu_expert_budget,
                  "GPU memory for routed experts on the cuda backend: a percentage of the model's experts (25%) or bytes "
                  "(8GiB); default all (--expert-budget is the CPU backend's)");
  sub->add_option("--runtime-threads", f->threads, "Compute threads for inference (default: all cores)");
  sub->add_option("--expert-budget", f->expert_budget,
                  "Memory for routed experts: a percentage of the model's experts (50%) or bytes (512MiB); default all");
  sub->add_option("--max-models", f->max_models, "Models kept loaded (default 2)");
  sub->add_option("--max-batch", f->max_batch, "Requests decoded together (default 8)");
  sub->add_option("--max-context", f->max_context, "Longest prompt + completion (default: the model's, at most 4096)");
  sub->add_flag("--no-prefetch", f->no_prefetch, "Do not prefetch the next layer's experts");
  sub->add_option("--matmul-precision", f->matmul_precision,
                  "bf16 weight products: auto (bf16x2 on AMX CPUs, else fp32), fp32, bf16x2, or bf16 (activations "
                  "rounded to bf16: faster, less accurate; docs/runtime.md)");
  sub->add_option("--expert-dtype", f->expert_dtype,
                  "How the expert cache holds routed experts: stored (as the checkpoint has them), bf16, fp8, int8 or "
                  "int4 (converted as each expert loads, with block scales: more experts per byte of budget, at a "
                  "measured accuracy cost; docs/runtime-quant.md)");
}

namespace {

// A budget flag's value: "50%" (a fraction of the model's experts) or bytes with an optional unit;
// empty = all experts.
Status ParseBudget(const std::string& flag, const std::string& b, double* fraction, uint64_t* bytes) {
  if (b.empty()) return OkStatus();
  double value = 0;
  auto [end, ec] = std::from_chars(b.data(), b.data() + b.size(), value);
  const std::string unit(end, b.data() + b.size());
  if (ec != std::errc() || !(value > 0) || !std::isfinite(value)) return InvalidArgumentError(flag + ": expected 50% or 512MiB");
  if (unit == "%") {
    if (value > 100) return InvalidArgumentError(flag + ": at most 100%");
    *fraction = value / 100;
    return OkStatus();
  }
  const std::pair<const char*, double> units[] = {{"", 1}, {"B", 1}, {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0}};
  for (const auto& [name, mult] : units) {
    if (unit == name) {
      if (value * mult >= 1.8e19) return InvalidArgumentError(flag + ": too large");
      *bytes = static_cast<uint64_t>(value * mult);
      return OkStatus();
    }
  }
  return InvalidArgumentError(flag + ": unknown unit '" + unit + "' (use %, B, KiB, MiB, GiB)");
}

}  // namespace

Result<ModelHostOptions> ModelHostOptionsFrom(const RuntimeFlags& f) {
  ModelHostOptions o;
  if (f.threads < 0 || f.threads > 1024) return InvalidArgumentError("--runtime-threads must be 0..1024");
  if (f.max_models < 1 || f.max_models > 64) return InvalidArgumentError("--max-models must be 1..64");
  if (f.max_batch < 1 || f.max_batch > 256) return InvalidArgumentError("--max-batch must be 1..256");
  if (f.max_context < 0) return InvalidArgumentError("--max-context must be >= 0");
  o.engine.threads = f.threads;
  o.engine.max_batch = f.max_batch;
  o.engine.max_context = f.max_context;
  o.engine.prefetch = !f.no_prefetch;
  if (!runtime::ParseMatMulPrecision(f.matmul_precision, &o.engine.matmul_precision)) {
    return InvalidArgumentError("--matmul-precision must be auto, fp32, bf16x2 or bf16");
  }
  if (!runtime::ParseExpertDType(f.expert_dtype, &o.engine.expert_dtype)) {
    return InvalidArgumentError("--expert-dtype must be stored, bf16, fp8, int8 or int4");
  }
  o.max_models = f.max_models;
  if (!runtime::ParseBackendKind(f.backend, &o.engine.backend)) return InvalidArgumentError("--backend must be cpu, cuda or auto");
  if (f.gpu_device < 0 || f.gpu_device > 255) return InvalidArgumentError("--gpu-device must be 0..255");
  o.engine.gpu_device = f.gpu_device;
  RETURN_IF_ERROR(ParseBudget("--expert-budget", f.expert_budget, &o.expert_budget_fraction, &o.engine.expert_budget_bytes));
  RETURN_IF_ERROR(ParseBudget("--gpu-expert-budget", f.gpu_expert_budget, &o.gpu_expert_budget_fraction,
                              &o.engine.gpu_expert_budget_bytes));
  return o;
}

namespace {

// --routing-trace FILE: one JSON line per token and MoE layer of every forward pass, in order:
//   {"run":R,"pos":P,"layer":L,"routed":[E,...],"predicted":[E,...]}
// R counts --repeat's runs from 0; P is the token's position (prompt tokens come first); routed
// are the top-k experts of layer L, most weighted first; predicted are those layer L + 1's router
// picks from layer L's hidden state (what the prefetcher asks for), absent when none was made.
class RoutingTrace {
 public:
  // PermissionDenied/NotFound etc. naming the path when the file cannot be created.
  static Result<std::shared_ptr<RoutingTrace>> Create(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) return ErrnoStatus("--routing-trace: cannot create", path, errno);
    return std::shared_ptr<RoutingTrace>(new RoutingTrace(f, path));
  }
  ~RoutingTrace() {
    if (f_) std::fclose(f_);
  }

  void set_run(int run) { run_.store(run, std::memory_order_relaxed); }

  // Called from the engine's thread (one pass at a time).
  void Record(const runtime::RoutingEvent& ev) {
    if (!f_) return;
    const size_t k = static_cast<size_t>(ev.top_k);
    std::string line;
    for (size_t i = 0; i < ev.positions.size(); ++i) {
      line = "{\"run\":" + std::to_string(run_.load(std::memory_order_relaxed)) + ",\"pos\":" +
             std::to_string(ev.positions[i]) + ",\"layer\":" + std::to_string(ev.layer) + ",\"routed\":";
      Ids(ev.routed.subspan(i * k, k), &line);
      if (!ev.predicted.empty()) {
        line += ",\"predicted\":";
        Ids(ev.predicted.subspan(i * k, k), &line);
      }
      line += "}\n";
      std::fwrite(line.data(), 1, line.size(), f_);
    }
  }

  // Flushes and closes; the first write error, naming the path.
  Status Close() {
    const bool bad = std::ferror(f_) != 0;
    const int err = errno;
    const int closed = std::fclose(f_);
    f_ = nullptr;
    if (bad || closed != 0) return ErrnoStatus("--routing-trace: cannot write", path_, bad ? err : errno);
    return OkStatus();
  }

 private:
  RoutingTrace(FILE* f, std::string path) : f_(f), path_(std::move(path)) {}
  static void Ids(std::span<const int32_t> ids, std::string* out) {
    *out += '[';
    for (size_t j = 0; j < ids.size(); ++j) *out += (j ? "," : "") + std::to_string(ids[j]);
    *out += ']';
  }

  FILE* f_;
  std::string path_;
  std::atomic<int> run_{0};
};

struct RunArgs {
  std::string model, prompt, tokens;
  bool chat = false, stats = false;
  int max_tokens = 64;
  float temperature = 0, top_p = 1;
  int top_k = 0;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  int dump_logits = -1;
  std::string eval_file, tokenize_file, out_file;
  int eval_window = 256, eval_windows = 0;
  int repeat = 1;
  std::vector<std::string> peers;
  std::shared_ptr<RemoteSourceStats> remote_stats = std::make_shared<RemoteSourceStats>();
  bool ignore_eos = false;
  RuntimeFlags runtime;
  std::string routing_trace_file;
  // Shared with the engine's routing observer, which may outlive this function's frame.
  std::shared_ptr<RoutingTrace> routing_trace;
  // The expert tier (--raw-cache-size): bytes of DATA/rawcache; 0 = off.
  uint64_t raw_cache = uint64_t{4} << 30;
  std::shared_ptr<TensorReadStats> read_stats = std::make_shared<TensorReadStats>();
};

// The engine options a RunArgs asks for (the routing trace's observer included).
Result<ModelHostOptions> HostOptionsFrom(const RunArgs& a) {
  ASSIGN_OR_RETURN(ModelHostOptions o, ModelHostOptionsFrom(a.runtime));
  if (a.routing_trace) {
    o.engine.on_routing = [trace = a.routing_trace](const runtime::RoutingEvent& ev) { trace->Record(ev); };
  }
  return o;
}

runtime::SamplingParams SamplingFrom(const RunArgs& a) {
  runtime::SamplingParams sp;
  sp.max_tokens = a.max_tokens;
  sp.temperature = a.temperature;
  sp.top_p = a.top_p;
  sp.top_k = a.top_k;
  sp.seed = a.seed;
  sp.stop = a.stop;
  sp.ignore_eos = a.ignore_eos;
  return sp;
}

std::vector<int32_t> ParseIds(const std::string& s, bool* ok) {
  std::vector<int32_t> ids;
  *ok = true;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    int32_t v = 0;
    auto [p, ec] = std::from_chars(s.data() + i, s.data() + j, v);
    if (ec != std::errc() || p != s.data() + j) *ok = false;
    ids.push_back(v);
    i = j + 1;
  }
  return ids;
}

// Prints the statistics gathered since `since` (a snapshot taken before the run).
void PrintStats(const runtime::Engine& e, const runtime::EngineStats& since) {
  runtime::EngineStats s = e.stats();
  auto d = [](uint64_t a, uint64_t b) { return static_cast<unsigned long long>(a - b); };
  const double prefill_s = s.prefill_seconds - since.prefill_seconds, decode_s = s.decode_seconds - since.decode_seconds;
  const runtime::ModelInfo& info = e.info();
  std::fprintf(stderr,
               "[%s] prompt %llu tokens (%.1f tok/s), generated %llu tokens (%.1f tok/s); experts: %llu hits, "
               "%llu misses, %llu prefetched, %llu evicted, %.1f MiB loaded in %.2f s; budget %.1f MiB of %.1f MiB (%s); "
               "active weights %.2f MiB/token; %s\n",
               info.architecture.c_str(), d(s.prompt_tokens, since.prompt_tokens),
               prefill_s > 0 ? (s.prompt_tokens - since.prompt_tokens) / prefill_s : 0.0,
               d(s.generated_tokens, since.generated_tokens),
               decode_s > 0 ? (s.decode_tokens - since.decode_tokens) / decode_s : 0.0, d(s.expert_hits, since.expert_hits),
               d(s.expert_misses, since.expert_misses), d(s.expert_prefetches, since.expert_prefetches),
               d(s.expert_evictions, since.expert_evictions), (s.expert_bytes_loaded - since.expert_bytes_loaded) / 1048576.0,
               s.expert_load_seconds - since.expert_load_seconds,
               (s.expert_budget_bytes ? s.expert_budget_bytes : info.expert_bytes) / 1048576.0, info.expert_bytes / 1048576.0,
               info.expert_dtype.c_str(), info.active_bytes_per_token / 1048576.0, std::string(info.backend).c_str());
  // A second line (scripts read the first, which starts with '['): the next-layer predictions and
  // what the cache did with them.
  const uint64_t predicted = s.predicted_experts - since.predicted_experts;
  const uint64_t routed = s.predicted_layer_routed - since.predicted_layer_routed;
  const uint64_t correct = s.predicted_correct - since.predicted_correct;
  if (predicted > 0) {
    std::fprintf(stderr,
                 "  next-layer prediction: %llu predicted, %llu of them routed (precision %.3f); %llu routed at "
                 "predicted layers (recall %.3f); prefetch: %llu asked, %llu already held, %llu loaded ahead, %llu "
                 "of those used, %llu not loaded (cache full)\n",
                 static_cast<unsigned long long>(predicted), static_cast<unsigned long long>(correct),
                 static_cast<double>(correct) / predicted, static_cast<unsigned long long>(routed),
                 routed ? static_cast<double>(correct) / routed : 0.0,
                 d(s.expert_prefetch_requests, since.expert_prefetch_requests),
                 d(s.expert_prefetch_present, since.expert_prefetch_present), d(s.expert_prefetches, since.expert_prefetches),
                 d(s.expert_prefetch_hits, since.expert_prefetch_hits),
                 d(s.expert_prefetch_dropped, since.expert_prefetch_dropped));
  }
  if (s.expert_host_tier_bytes > 0) {
    std::fprintf(stderr, "  host tier below the GPU's experts: %llu loads served, %.1f MiB held\n",
                 d(s.expert_host_tier_hits, since.expert_host_tier_hits), s.expert_host_tier_bytes / 1048576.0);
  }
}

// A model this node does not hold, run from peers: the same policy gate on the card and LICENSE
// (read through the verified chunks), then an engine over the remote source.
Result<std::shared_ptr<runtime::Engine>> OpenRemote(const GlobalFlags& flags, const RunArgs& a) {
  ASSIGN_OR_RETURN(ModelHostOptions o, HostOptionsFrom(a));
  ASSIGN_OR_RETURN(verify::TrustStore trust, TrustFile(flags.data_dir + "/trust.json").Load());
  const size_t at = a.model.find('@');
  const std::string repo = a.model.substr(0, at), rev = at == std::string::npos ? "main" : a.model.substr(at + 1);
  PeerFetchOptions pf;
  pf.peers = a.peers;
  ASSIGN_OR_RETURN(auto source, OpenPeerSource(pf, repo, rev, trust, a.remote_stats));
  auto matcher = verify::LicenseMatcher::FromDirectory(o.common_licenses);
  ModelView view;
  view.read = [&](const std::string& path) -> std::optional<std::string> {
    auto f = source->ReadFile(path);
    return f.ok() ? std::optional<std::string>(std::move(*f)) : std::nullopt;
  };
  view.manifest = [](const verify::Serialization&) -> Result<verify::Manifest> {
    return UnimplementedError("signatures of models run from peers are not checked yet");
  };
  const TrustReport report = Assess(view, repo, NodeContext(trust, &matcher, nullptr));
  if (report.verdict != verify::Verdict::kAllow) {
    return FailedPreconditionError(a.model + " is not allowed to run by the node's policy: " + report.Summary());
  }
  ASSIGN_OR_RETURN(auto engine, runtime::Engine::Load(std::move(source), o.engine));
  return std::shared_ptr<runtime::Engine>(std::move(engine));
}

// Loads the model through the same host (and policy gate) `serve` uses.
// The raw cache `serve` keeps too (DATA/rawcache; one process holds the store at a time): the
// weight shards of a model run with an expert budget below its experts are copied there, and
// every shard held there is read from its copy. Only the copies asked for are re-hashed at start.
// Null when --raw-cache-size is 0.
std::unique_ptr<RawCache> OpenRawCache(store::Store* st, const GlobalFlags& flags, const RunArgs& a) {
  if (a.raw_cache == 0) return nullptr;
  return std::make_unique<RawCache>(
      RawCacheOptions{.dir = flags.data_dir + "/rawcache", .capacity = a.raw_cache, .verify_all_at_start = false}, st);
}

// With --stats: where the experts loaded since `raw_before` / `chunk_before` came from.
void PrintReadStats(const TensorReadStats& s, uint64_t raw_before, uint64_t chunk_before) {
  std::fprintf(stderr, "  experts read: %.1f MiB from raw copies (DATA/rawcache), %.1f MiB from chunks\n",
               (s.raw_bytes.load() - raw_before) / 1048576.0, (s.chunk_bytes.load() - chunk_before) / 1048576.0);
}

// `raw` (nullable) must outlive the engine.
Result<std::shared_ptr<runtime::Engine>> Open(store::Store* st, const GlobalFlags& flags, const RunArgs& a, RawCache* raw) {
  ASSIGN_OR_RETURN(ModelHostOptions o, HostOptionsFrom(a));
  o.max_models = 1;
  o.trust_path = flags.data_dir + "/trust.json";
  o.raw_cache = raw;
  o.read_stats = a.read_stats;
  ModelHost host(st, std::move(o));  // the engine it loads outlives it (shared)
  ASSIGN_OR_RETURN(LoadedModel m, host.Get(a.model));
  return m.engine;
}

// Streams one generation to stdout; returns the generated text.
Result<std::string> Stream(runtime::Engine& e, std::vector<int32_t> prompt, const runtime::SamplingParams& sp) {
  std::string text;
  std::promise<Status> done;
  runtime::GenerateRequest req;
  req.prompt = std::move(prompt);
  req.sampling = sp;
  req.on_event = [&](const runtime::TokenEvent& ev) {
    std::fwrite(ev.text.data(), 1, ev.text.size(), stdout);
    std::fflush(stdout);
    text += ev.text;
    if (ev.finish != runtime::FinishReason::kNone) done.set_value(ev.error);
    return true;
  };
  auto finished = done.get_future();
  RETURN_IF_ERROR(e.Submit(std::move(req)));
  RETURN_IF_ERROR(finished.get());
  return text;
}

// --tokenize FILE --out IDS: the file's text as the model's tokenizer reads it (no special
// tokens added), written as little-endian uint32 ids: what tools/train trains on.
int Tokenize(runtime::Engine& e, const RunArgs& a) {
  if (a.out_file.empty()) return Fail(InvalidArgumentError("--tokenize needs --out FILE"));
  auto text = ReadFileToString(a.tokenize_file, uint64_t{256} << 20);
  if (!text.ok()) return Fail(text.status());
  const std::vector<int32_t> ids = e.Tokenize(*text, false);
  std::string bytes;
  bytes.reserve(ids.size() * 4);
  for (int32_t id : ids) {
    const auto u = static_cast<uint32_t>(id);
    for (int k = 0; k < 4; ++k) bytes.push_back(static_cast<char>((u >> (8 * k)) & 0xFF));
  }
  if (Status s = WriteFileAtomic(a.out_file, bytes); !s.ok()) return Fail(s);
  std::printf("%zu tokens from %zu bytes\n", ids.size(), text->size());
  return 0;
}

// --eval IDS: the model's mean next-token loss (natural log) over the file's uint32 ids, cut
// into windows of --eval-window tokens, each read from its start (no context carried over): the
// held-out figure tools/train computes the same way, to check the runtime against the trainer.
int Eval(runtime::Engine& e, const RunArgs& a) {
  if (a.eval_window < 2 || a.eval_window > e.info().max_context) {
    return Fail(InvalidArgumentError("--eval-window must be 2.." + std::to_string(e.info().max_context)));
  }
  auto raw = ReadFileToString(a.eval_file, uint64_t{1} << 30);
  if (!raw.ok()) return Fail(raw.status());
  if (raw->size() % 4 != 0) return Fail(InvalidArgumentError(a.eval_file + " is not a file of uint32 ids"));
  std::vector<int32_t> ids(raw->size() / 4);
  for (size_t i = 0; i < ids.size(); ++i) {
    uint32_t u = 0;
    for (int k = 0; k < 4; ++k) u |= static_cast<uint32_t>(static_cast<uint8_t>((*raw)[4 * i + k])) << (8 * k);
    if (u >= static_cast<uint32_t>(e.info().vocab)) {
      return Fail(InvalidArgumentError("id " + std::to_string(u) + " at " + std::to_string(i) + " is outside the vocabulary"));
    }
    ids[i] = static_cast<int32_t>(u);
  }
  const size_t w = static_cast<size_t>(a.eval_window);
  size_t windows = ids.size() / w;
  if (a.eval_windows > 0) windows = std::min(windows, static_cast<size_t>(a.eval_windows));
  if (windows == 0) return Fail(InvalidArgumentError("fewer ids than one window"));
  double total = 0;
  uint64_t counted = 0;
  for (size_t k = 0; k < windows; ++k) {
    std::vector<int32_t> window(ids.begin() + k * w, ids.begin() + (k + 1) * w);
    auto trace = e.TraceLogits(window, 0);
    if (!trace.ok()) return Fail(trace.status());
    for (size_t i = 0; i + 1 < w; ++i) {
      const std::vector<float>& l = trace->prefill[i];
      double mx = l[0];
      for (float v : l) mx = std::max(mx, static_cast<double>(v));
      double sum = 0;
      for (float v : l) sum += std::exp(static_cast<double>(v) - mx);
      total += mx + std::log(sum) - l[window[i + 1]];
      ++counted;
    }
  }
  const double loss = total / static_cast<double>(counted);
  nlohmann::json out = {{"windows", windows}, {"window", w}, {"predicted_tokens", counted}, {"loss", loss},
                        {"perplexity", std::exp(loss)}};
  std::cout << out.dump() << "\n";
  return 0;
}

int RunModel(const GlobalFlags& flags, const RunArgs& a) {
  Result<std::unique_ptr<store::Store>> st = std::unique_ptr<store::Store>();
  // With peers, a model this node holds (perhaps in part) runs from the store, its missing
  // chunks fetched from the peers; one it does not hold at all runs from the peers alone.
  bool local = a.peers.empty();
  std::shared_ptr<ChunkFetcher> fetcher;
  if (!local) {
    auto spec = ParseRepoSpec(a.model);
    if (spec.ok()) {
      if (auto opened = OpenStore(flags); opened.ok() && (*opened)->Resolve(spec->repo, spec->rev).ok()) {
        st = std::move(opened);
        PeerFetchOptions pf;
        pf.peers = a.peers;
        // A reader names no revision: the peers serve these requests to a node they trust.
        if (auto key = LoadOrCreateNodeKey(flags.data_dir); key.ok()) pf.node_key = std::move(*key);
        fetcher = std::make_shared<ChunkFetcher>(pf);
        (*st)->SetChunkSource(PeerChunkSource(fetcher));
        local = true;
      }
    }
  } else {
    st = OpenStore(flags);
    if (!st.ok()) return Fail(st.status());
  }
  std::unique_ptr<RawCache> raw_cache = local ? OpenRawCache(st->get(), flags, a) : nullptr;  // outlives the engine
  auto engine = local ? Open(st->get(), flags, a, raw_cache.get()) : OpenRemote(flags, a);
  if (!engine.ok()) return Fail(engine.status());
  runtime::Engine& e = **engine;
  if (!a.tokenize_file.empty()) return Tokenize(e, a);
  if (!a.eval_file.empty()) return Eval(e, a);
  std::vector<int32_t> prompt;
  if (!a.tokens.empty()) {
    bool ok = false;
    prompt = ParseIds(a.tokens, &ok);
    if (!ok) return Fail(InvalidArgumentError("--tokens must be comma-separated token ids"));
  } else if (a.chat) {
    auto text = e.ApplyChatTemplate({{"user", a.prompt, ""}}, true);
    if (!text.ok()) return Fail(text.status());
    prompt = e.Tokenize(*text, false);
  } else {
    prompt = e.Tokenize(a.prompt, true);
  }
  if (a.dump_logits >= 0) {  // the logits trace as JSON, for correctness checks
    auto trace = e.TraceLogits(prompt, a.dump_logits);
    if (!trace.ok()) return Fail(trace.status());
    nlohmann::json out = {{"prompt", prompt}, {"prefill_logits", trace->prefill}, {"decode", nlohmann::json::array()}};
    for (size_t i = 0; i < trace->tokens.size(); ++i) {
      out["decode"].push_back({{"token", trace->tokens[i]}, {"logits", trace->decode[i]}});
    }
    std::cout << out.dump() << "\n";
    return 0;
  }
  const runtime::SamplingParams sp = SamplingFrom(a);
  for (int i = 0; i < a.repeat; ++i) {  // repeats show warm speeds (experts already loaded)
    if (a.routing_trace) a.routing_trace->set_run(i);
    const runtime::EngineStats before = e.stats();
    const uint64_t raw_before = a.read_stats->raw_bytes, chunk_before = a.read_stats->chunk_bytes;
    auto text = Stream(e, prompt, sp);
    std::printf("\n");
    if (!text.ok()) return Fail(text.status());
    if (a.stats) PrintStats(e, before);
    if (a.stats && local) PrintReadStats(*a.read_stats, raw_before, chunk_before);
  }
  if (a.stats && fetcher) {
    uint64_t chunks = 0, bytes = 0;
    for (const PeerStats& p : fetcher->stats()) {
      chunks += p.chunks;
      bytes += p.bytes;
    }
    std::fprintf(stderr, "from peers into the store: %llu chunks, %.1f MiB on the wire\n", (unsigned long long)chunks,
                 bytes / 1048576.0);
  } else if (a.stats && !a.peers.empty()) {
    std::fprintf(stderr, "from peers: %llu chunks, %.1f MiB\n", (unsigned long long)a.remote_stats->chunks,
                 a.remote_stats->raw_bytes / 1048576.0);
  }
  return 0;
}

int Run(const GlobalFlags& flags, const RunArgs& args) {
  RunArgs a = args;
  if (!a.routing_trace_file.empty()) {  // created first: a path that cannot be written fails at once
    auto trace = RoutingTrace::Create(a.routing_trace_file);
    if (!trace.ok()) return Fail(trace.status());
    a.routing_trace = std::move(*trace);
  }
  const int rc = RunModel(flags, a);  // the engine is gone when it returns
  if (a.routing_trace) {
    if (Status s = a.routing_trace->Close(); !s.ok() && rc == 0) return Fail(s);
  }
  return rc;
}

int Chat(const GlobalFlags& flags, const RunArgs& a) {
  auto st = OpenStore(flags);
  if (!st.ok()) return Fail(st.status());
  std::unique_ptr<RawCache> raw_cache = OpenRawCache(st->get(), flags, a);  // outlives the engine
  auto engine = Open(st->get(), flags, a, raw_cache.get());
  if (!engine.ok()) return Fail(engine.status());
  runtime::Engine& e = **engine;
  std::vector<runtime::ChatMessage> history;
  runtime::SamplingParams sp = SamplingFrom(a);
  const bool tty = isatty(fileno(stdin));
  std::string line;
  for (;;) {
    if (tty) std::fprintf(stderr, "> ");
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      history.clear();
      continue;
    }
    history.push_back({"user", line, ""});
    auto text = e.ApplyChatTemplate(history, true);
    if (!text.ok()) return Fail(text.status());
    auto reply = Stream(e, e.Tokenize(*text, false), sp);
    std::printf("\n");
    std::fflush(stdout);
    if (!reply.ok()) return Fail(reply.status());
    history.push_back({"assistant", *reply, ""});
    ++sp.seed;
  }
  if (a.stats) PrintStats(e, runtime::EngineStats{});
  return 0;
}

void AddCommon(CLI::App* sub, RunArgs* a) {
  sub->add_option("model", a->model, "REPO[@REV] in the store")->required();
  sub->add_option("--max-tokens", a->max_tokens, "Tokens to generate at most (default 64)");
  sub->add_option("--temperature", a->temperature, "0 = greedy (default 0)");
  sub->add_option("--top-p", a->top_p, "Nucleus sampling mass (default 1)");
  sub->add_option("--top-k", a->top_k, "Sample among the k most likely (default 0 = off)");
  sub->add_option("--seed", a->seed, "Random seed (default 0)");
  sub->add_option("--stop", a->stop, "Stop before this string (repeatable)");
  sub->add_flag("--stats", a->stats, "Print speed and expert-cache statistics to stderr");
  AddRuntimeFlags(sub, &a->runtime);
  sub->add_option("--raw-cache-size", a->raw_cache,
                  "Disk for raw copies of weight shards (DATA/rawcache, shared with serve): with an expert budget below "
                  "the model's experts, evicted experts reload from them instead of the compressed chunks (bytes, "
                  "default 4 GiB; 0 = off)");
}

}  // namespace

void AddRunCommands(CLI::App& app, const GlobalFlags& flags, std::vector<Command>* out) {
  {
    auto a = std::make_shared<RunArgs>();
    auto* sub = app.add_subcommand("run", "Generate text with a stored model");
    AddCommon(sub, a.get());
    sub->add_option("--prompt", a->prompt, "Prompt text");
    sub->add_flag("--chat", a->chat, "Wrap the prompt in the model's chat template as a user message");
    sub->add_option("--tokens", a->tokens, "Prompt as comma-separated token ids (instead of --prompt)");
    sub->add_flag("--ignore-eos", a->ignore_eos, "Keep generating past end-of-sequence tokens");
    sub->add_option("--repeat", a->repeat, "Run the generation N times (with --stats: warm figures)")
        ->check(CLI::Range(1, 1000));
    sub->add_option("--peer", a->peers,
                    "Run a model this node does not hold from these hubnode peers (repeatable; weights fetched on "
                    "demand, checked against a trusted chunk map)");
    sub->add_option("--dump-logits", a->dump_logits,
                    "Print the prompt's logits and N greedy steps' logits as JSON instead of generating");
    sub->add_option("--eval", a->eval_file,
                    "Print the mean next-token loss over a file of uint32 token ids (held-out text) as JSON");
    sub->add_option("--eval-window", a->eval_window, "With --eval: tokens per window (default 256)");
    sub->add_option("--eval-windows", a->eval_windows, "With --eval: windows read at most (default: all)");
    sub->add_option("--tokenize", a->tokenize_file, "Write a text file's token ids (uint32 LE) to --out instead of generating");
    sub->add_option("--out", a->out_file, "With --tokenize: the ids file to write");
    sub->add_option("--routing-trace", a->routing_trace_file,
                    "Write every token's routed experts per MoE layer, and the experts predicted for the next "
                    "layer, to FILE as JSON lines");
    out->push_back({sub, [&flags, a] { return Run(flags, *a); }});
  }
  {
    auto a = std::make_shared<RunArgs>();
    a->temperature = 0.7f;
    a->max_tokens = 256;
    auto* sub = app.add_subcommand("chat", "Chat with a stored model in the terminal (/reset, /exit)");
    AddCommon(sub, a.get());
    out->push_back({sub, [&flags, a] { return Chat(flags, *a); }});
  }
}

}  // namespace hubnode::hub
