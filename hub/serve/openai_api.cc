#include "hub/serve/openai_api.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>

#include "base/hex.h"
#include "base/json_limits.h"
#include "base/log.h"
#include "hub/http/http_util.h"

namespace hubnode::hub {
namespace {

using runtime::FinishReason;
using runtime::TokenEvent;

void SendOpenAiError(httplib::Response& res, int status, std::string_view code, std::string_view message,
                     std::string_view param = "") {
  json err = {{"message", message},
              {"type", status >= 500 ? "server_error" : "invalid_request_error"},
              {"param", param.empty() ? json(nullptr) : json(param)},
              {"code", code}};
  res.set_header("X-Error-Code", std::string(code));
  SendJson(res, json{{"error", err}}, status);
}

void SendOpenAiStatus(httplib::Response& res, const Status& s, std::string_view param = "") {
  const int http = HttpStatusFor(s.code());
  const std::string code(StatusCodeName(s.code()));
  SendOpenAiError(res, http, code, s.message(), param);
}

std::string RandomId(std::string_view prefix) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return std::string(prefix) + buf;
}

json Bytes(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(c);
  return b;
}

// Characters (code points) of UTF-8 text, as OpenAI's text_offset counts them.
size_t Chars(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// Appends the prompt's tokens to a legacy completions logprobs object: the first token's log-prob
// and alternatives are null; offsets count characters from `offset` on (advanced past them).
void AddPromptLogprobs(const std::vector<runtime::PromptLogprob>& prompt, json& lp, size_t& offset) {
  for (const auto& t : prompt) {
    lp["tokens"].push_back(t.token.text);
    lp["text_offset"].push_back(offset);
    offset += Chars(t.token.text);
    if (!t.has_logprob) {
      lp["token_logprobs"].push_back(nullptr);
      lp["top_logprobs"].push_back(nullptr);
      continue;
    }
    lp["token_logprobs"].push_back(t.token.logprob);
    json top = json::object();
    for (const auto& x : t.top) top[x.text] = x.logprob;
    lp["top_logprobs"].push_back(top);
  }
}

// The parameters both endpoints share, checked; the error names the parameter.
struct Params {
  std::string model;
  runtime::SamplingParams sampling;
  bool stream = false, include_usage = false, logprobs = false, echo = false;
};


Status ParseCommon(const json& body, bool chat, Params& p) {
  auto num = [&](const char* key, auto& out, double lo, double hi) -> Status {
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) return OkStatus();
    if (!it->is_number()) return InvalidArgumentError(std::string(key) + " must be a number");
    const double v = it->get<double>();
    if (!(v >= lo && v <= hi)) return InvalidArgumentError(std::string(key) + " is out of range");
    out = static_cast<std::remove_reference_t<decltype(out)>>(v);
    return OkStatus();
  };
  auto model = body.find("model");
  if (model == body.end() || !model->is_string() || model->get<std::string>().empty()) {
    return InvalidArgumentError("model is required");
  }
  p.model = model->get<std::string>();
  p.sampling.max_tokens = chat ? 256 : 16;
  RETURN_IF_ERROR(num("temperature", p.sampling.temperature, 0, 2));
  RETURN_IF_ERROR(num("top_p", p.sampling.top_p, 0, 1));
  RETURN_IF_ERROR(num("top_k", p.sampling.top_k, -1, 1 << 20));
  if (p.sampling.top_k < 0) p.sampling.top_k = 0;
  RETURN_IF_ERROR(num("max_tokens", p.sampling.max_tokens, 1, 1 << 20));
  RETURN_IF_ERROR(num("max_completion_tokens", p.sampling.max_tokens, 1, 1 << 20));
  if (auto s = body.find("seed"); s != body.end() && !s->is_null()) {
    if (!s->is_number_integer()) return InvalidArgumentError("seed must be an integer");
    p.sampling.seed = static_cast<uint64_t>(s->get<int64_t>());
  } else {
    p.sampling.seed = std::random_device{}();
  }
  for (const char* key : {"presence_penalty", "frequency_penalty"}) {
    double v = 0;
    RETURN_IF_ERROR(num(key, v, -2, 2));
    if (v != 0) return InvalidArgumentError(std::string(key) + " is not supported (only 0)");
  }
  if (auto n = body.find("n"); n != body.end() && !n->is_null() && *n != 1) {
    return InvalidArgumentError("n must be 1");
  }
  if (auto st = body.find("stop"); st != body.end() && !st->is_null()) {
    if (st->is_string()) {
      p.sampling.stop.push_back(st->get<std::string>());
    } else if (st->is_array()) {
      for (const json& s : *st) {
        if (!s.is_string()) return InvalidArgumentError("stop must be a string or a list of strings");
        p.sampling.stop.push_back(s.get<std::string>());
      }
    } else {
      return InvalidArgumentError("stop must be a string or a list of strings");
    }
  }
  if (auto ie = body.find("ignore_eos"); ie != body.end() && ie->is_boolean()) p.sampling.ignore_eos = *ie;
  if (auto s = body.find("stream"); s != body.end() && !s->is_null()) {
    if (!s->is_boolean()) return InvalidArgumentError("stream must be a boolean");
    p.stream = *s;
  }
  if (auto so = body.find("stream_options"); so != body.end() && so->is_object()) {
    p.include_usage = so->value("include_usage", false);
  }
  if (chat) {
    if (auto lp = body.find("logprobs"); lp != body.end() && lp->is_boolean()) p.logprobs = *lp;
    int top = 0;
    RETURN_IF_ERROR(num("top_logprobs", top, 0, 20));
    if (body.contains("top_logprobs") && !p.logprobs) return InvalidArgumentError("top_logprobs requires logprobs");
    if (p.logprobs) p.sampling.top_logprobs = top;
  } else {
    int lp = -1;
    RETURN_IF_ERROR(num("logprobs", lp, 0, 5));
    if (body.contains("logprobs") && !body["logprobs"].is_null()) {
      p.logprobs = true;
      p.sampling.top_logprobs = lp;
    }
    if (auto echo = body.find("echo"); echo != body.end() && !echo->is_null()) {
      if (!echo->is_boolean()) return InvalidArgumentError("echo must be a boolean");
      p.echo = echo->get<bool>();
      // The prompt's tokens and log-probs come first, the first token's log-prob null.
      p.sampling.prompt_logprobs = p.echo && p.logprobs;
    }
  }
  return runtime::ValidateSamplingParams(p.sampling);
}

// Events of one generation, handed from the engine thread to the HTTP worker.
struct Channel {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<TokenEvent> events;
  bool cancelled = false;
};

}  // namespace

void OpenAiApi::Handle(const httplib::Request& req, httplib::Response& res, const std::optional<Principal>& who) {
  if (host_ == nullptr) return SendOpenAiError(res, 404, "NotFound", "inference is disabled on this node");
  if (req.path == "/v1/models" && req.method != "POST") return Models(who, res);
  if (req.path == "/v1/chat/completions" && req.method == "POST") return Generate(req, res, who, true);
  if (req.path == "/v1/completions" && req.method == "POST") return Generate(req, res, who, false);
  if (req.path == "/v1/chat/completions" || req.path == "/v1/completions") {
    return SendOpenAiError(res, 405, "MethodNotAllowed", "use POST");
  }
  SendOpenAiError(res, 404, "NotFound", "no such route");
}

void OpenAiApi::Models(const std::optional<Principal>& who, httplib::Response& res) {
  auto repos = st_->ListRepos();
  if (!repos.ok()) return SendOpenAiStatus(res, repos.status());
  // Models loaded now (default branches): how they run, for the callers who may read them.
  std::map<std::string, json> loaded;
  if (host_ != nullptr) {
    for (const LoadedModel& m : host_->Loaded()) {
      const runtime::ModelInfo& info = m.engine->info();
      const runtime::EngineStats s = m.engine->stats();
      loaded[m.id] = json{{"loaded", true},
                          {"backend", info.backend},
                          {"expert_dtype", info.expert_dtype},
                          {"expert_bytes", info.expert_bytes},
                          {"expert_budget_bytes", s.expert_budget_bytes ? s.expert_budget_bytes : info.expert_bytes}};
    }
  }
  json data = json::array();
  for (const store::RepoInfo& r : *repos) {
    if (!CanRead(who, r)) continue;
    // A model is listed when its default branch has a config.json of a supported family.
    auto commit = st_->Resolve(r.id, "HEAD");
    if (!commit.ok()) continue;
    auto source = OpenStoreSource(st_, *commit);
    if (!source.ok()) continue;
    auto config = (*source)->ReadFile("config.json");
    if (!config.ok() || !runtime::IsSupportedConfig(*config)) continue;
    auto it = loaded.find(r.id.str());
    data.push_back({{"id", r.id.str()},
                    {"object", "model"},
                    {"created", r.created},
                    {"owned_by", r.id.str().substr(0, r.id.str().find('/') == std::string::npos ? 0 : r.id.str().find('/'))},
                    {"hubnode", it != loaded.end() ? it->second : json{{"loaded", false}}}});
  }
  SendJson(res, json{{"object", "list"}, {"data", data}});
}

void OpenAiApi::Generate(const httplib::Request& req, httplib::Response& res, const std::optional<Principal>& who,
                         bool chat) {
  json body = (JsonDepthWithin(req.body) ? json::parse(req.body, nullptr, false) : json(json::value_t::discarded));
  if (body.is_discarded() || !body.is_object()) return SendOpenAiError(res, 400, "BadRequest", "the body is not a JSON object");
  Params p;
  if (Status s = ParseCommon(body, chat, p); !s.ok()) return SendOpenAiError(res, 400, "BadRequest", s.message());
  // The model must be visible to the caller; a private one answers as a missing one.
  auto repo_id = ModelHost::RepoOf(p.model);
  auto repo = repo_id.ok() ? st_->GetRepo(*repo_id) : Result<store::RepoInfo>(repo_id.status());
  if (!repo.ok() || !CanRead(who, *repo)) {
    return SendOpenAiError(res, 404, "model_not_found", "the model '" + p.model + "' does not exist", "model");
  }
  auto model = host_->Get(p.model);
  if (!model.ok()) {
    if (model.status().code() == StatusCode::kNotFound) {
      return SendOpenAiError(res, 404, "model_not_found", model.status().message(), "model");
    }
    return SendOpenAiStatus(res, model.status(), "model");
  }
  runtime::Engine& engine = *model->engine;
  std::vector<int32_t> prompt;
  if (chat) {
    auto msgs = body.find("messages");
    if (msgs == body.end() || !msgs->is_array() || msgs->empty()) {
      return SendOpenAiError(res, 400, "BadRequest", "messages must be a non-empty list", "messages");
    }
    std::vector<runtime::ChatMessage> messages;
    // The message fields reach the template in the client's key order (tojson prints them).
    const nlohmann::ordered_json ordered = nlohmann::ordered_json::parse(req.body, nullptr, false);
    size_t index = 0;
    for (const json& m : *msgs) {
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
        return SendOpenAiError(res, 400, "BadRequest", "each message needs a role", "messages");
      }
      runtime::ChatMessage cm;
      cm.role = m["role"].get<std::string>();
      const json content = m.value("content", json(nullptr));
      if (content.is_string()) {
        cm.content = content.get<std::string>();
      } else if (content.is_array()) {  // [{"type": "text", "text": ...}]
        for (const json& part : content) {
          if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string()) {
            return SendOpenAiError(res, 400, "BadRequest", "only text content parts are supported", "messages");
          }
          cm.content += part["text"].get<std::string>();
        }
      } else if (!content.is_null()) {
        return SendOpenAiError(res, 400, "BadRequest", "content must be a string or a list of parts", "messages");
      }
      nlohmann::ordered_json extra = ordered["messages"][index++];
      extra.erase("role");
      extra.erase("content");
      if (!extra.empty()) cm.extra_json = extra.dump();
      messages.push_back(std::move(cm));
    }
    auto text = engine.ApplyChatTemplate(messages, true);
    if (!text.ok()) return SendOpenAiError(res, 400, "BadRequest", text.status().message(), "messages");
    prompt = engine.Tokenize(*text, false);
  } else {
    auto pr = body.find("prompt");
    if (pr == body.end()) return SendOpenAiError(res, 400, "BadRequest", "prompt is required", "prompt");
    if (pr->is_string()) {
      prompt = engine.Tokenize(pr->get<std::string>(), true);
    } else if (pr->is_array() && pr->size() == 1 && (*pr)[0].is_string()) {
      prompt = engine.Tokenize((*pr)[0].get<std::string>(), true);
    } else if (pr->is_array() && !pr->empty() && (*pr)[0].is_number_integer()) {
      for (const json& t : *pr) {
        if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= engine.info().vocab) {
          return SendOpenAiError(res, 400, "BadRequest", "prompt token ids must be integers below the vocabulary size", "prompt");
        }
        prompt.push_back(static_cast<int32_t>(t.get<int64_t>()));
      }
    } else {
      return SendOpenAiError(res, 400, "BadRequest", "prompt must be a string or a list of token ids", "prompt");
    }
  }
  if (static_cast<int>(prompt.size()) >= engine.info().max_context) {
    return SendOpenAiError(res, 400, "context_length_exceeded",
                           "the prompt has " + std::to_string(prompt.size()) + " tokens; the model's context is " +
                               std::to_string(engine.info().max_context),
                           chat ? "messages" : "prompt");
  }

  // What echo puts before the completion: the prompt as the tokenizer reads it back.
  const std::string echo_text = !chat && p.echo ? engine.Detokenize(prompt) : std::string();
  auto channel = std::make_shared<Channel>();
  runtime::GenerateRequest gen;
  gen.prompt = prompt;
  gen.sampling = p.sampling;
  gen.on_event = [channel](const TokenEvent& ev) {
    std::lock_guard lock(channel->mu);
    if (channel->cancelled) return false;
    channel->events.push_back(ev);
    channel->cv.notify_one();
    return true;
  };
  // The engine's expert counters as this request enters: streamed chunks report what was loaded
  // since (engine-wide: concurrent requests on the same model count too).
  const runtime::EngineStats at_submit = engine.stats();
  if (Status s = engine.Submit(std::move(gen)); !s.ok()) {
    return SendOpenAiStatus(res, s);
  }
  const std::string id = RandomId(chat ? "chatcmpl-" : "cmpl-");
  const int64_t created = static_cast<int64_t>(std::time(nullptr));
  const std::string model_name = p.model;
  auto engine_ref = model->engine;  // keeps the engine alive while the response streams

  // Turns an event's logprobs into the endpoint's shape.
  auto chat_logprob = [](const TokenEvent& ev) {
    json tops = json::array();
    for (const auto& t : ev.top_logprobs) tops.push_back({{"token", t.text}, {"logprob", t.logprob}, {"bytes", Bytes(t.bytes)}});
    return json{{"token", ev.logprob->text}, {"logprob", ev.logprob->logprob}, {"bytes", Bytes(ev.logprob->bytes)},
                {"top_logprobs", tops}};
  };
  auto usage = [](const TokenEvent& ev) {
    return json{{"prompt_tokens", ev.prompt_tokens}, {"completion_tokens", ev.completion_tokens},
                {"total_tokens", ev.prompt_tokens + ev.completion_tokens}};
  };
  // Waits for the next event; on the way calls `idle` once a second (false = the client left).
  auto next_event = [channel](const std::function<bool()>& idle) -> std::optional<TokenEvent> {
    std::unique_lock lock(channel->mu);
    while (channel->events.empty()) {
      if (channel->cv.wait_for(lock, std::chrono::seconds(1)) == std::cv_status::timeout && channel->events.empty()) {
        lock.unlock();
        const bool alive = idle();
        lock.lock();
        if (!alive) {
          channel->cancelled = true;
          return std::nullopt;
        }
      }
    }
    TokenEvent ev = std::move(channel->events.front());
    channel->events.pop_front();
    return ev;
  };

  if (p.stream) {
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    auto first = std::make_shared<bool>(true);
    auto offset = std::make_shared<size_t>(0);  // characters of text sent so far
    res.set_chunked_content_provider("text/event-stream", [=](size_t, httplib::DataSink& sink) {
      auto send = [&](const json& j) {
        const std::string line = "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
        return sink.write(line.data(), line.size());
      };
      // A non-standard field (OpenAI clients ignore unknown ones): the experts the engine loaded
      // from the store, and the seconds that took, since this request was submitted.
      auto expert_loads = [&] {
        const runtime::EngineStats now = engine_ref->stats();
        const uint64_t loads = now.expert_misses >= at_submit.expert_misses ? now.expert_misses - at_submit.expert_misses : 0;
        const double seconds = std::max(0.0, now.expert_load_seconds - at_submit.expert_load_seconds);
        return json{{"expertLoads", loads}, {"expertLoadSeconds", seconds}};
      };
      auto chunk = [&](json choice) {
        return json{{"id", id}, {"object", chat ? "chat.completion.chunk" : "text_completion"}, {"created", created},
                    {"model", model_name}, {"choices", json::array({std::move(choice)})}, {"hubnode", expert_loads()}};
      };
      auto cancel = [&] {
        std::lock_guard lock(channel->mu);
        channel->cancelled = true;
        return false;
      };
      if (*first && chat) {
        *first = false;
        if (!send(chunk({{"index", 0}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"logprobs", nullptr}, {"finish_reason", nullptr}}))) {
          return cancel();
        }
      }
      for (;;) {
        // SSE comments keep idle connections open and reveal a client that left.
        auto ev = next_event([&] { return sink.write(": keep-alive\n\n", 14); });
        if (!ev) return false;
        if (ev->finish == FinishReason::kError) {
          send(json{{"error", {{"message", ev->error.message()}, {"type", "server_error"}, {"code", StatusCodeName(ev->error.code())}}}});
          sink.done();
          return true;
        }
        json choice = {{"index", 0}, {"logprobs", nullptr},
                       {"finish_reason", ev->finish == FinishReason::kNone ? json(nullptr) : json(FinishReasonName(ev->finish))}};
        if (chat) {
          choice["delta"] = ev->text.empty() && ev->finish != FinishReason::kNone ? json::object() : json{{"content", ev->text}};
          if (p.logprobs && ev->logprob) choice["logprobs"] = {{"content", json::array({chat_logprob(*ev)})}};
        } else {
          choice["text"] = ev->text;
          json lp = {{"tokens", json::array()}, {"token_logprobs", json::array()}, {"top_logprobs", json::array()},
                     {"text_offset", json::array()}};
          if (*first && p.echo) {
            // The prompt comes first, as OpenAI's legacy completions echo it.
            choice["text"] = echo_text + ev->text;
            if (p.logprobs) AddPromptLogprobs(ev->prompt_logprobs, lp, *offset);
            *offset += Chars(echo_text);
          }
          *first = false;
          if (p.logprobs && ev->logprob) {
            json top = json::object();
            for (const auto& t : ev->top_logprobs) top[t.text] = t.logprob;
            lp["tokens"].push_back(ev->logprob->text);
            lp["token_logprobs"].push_back(ev->logprob->logprob);
            lp["top_logprobs"].push_back(top);
            lp["text_offset"].push_back(*offset);
          }
          if (p.logprobs && !lp["tokens"].empty()) choice["logprobs"] = lp;
          *offset += Chars(ev->text);
        }
        if (!send(chunk(choice))) return cancel();
        if (ev->finish != FinishReason::kNone) {
          if (p.include_usage) {
            send(json{{"id", id}, {"object", chat ? "chat.completion.chunk" : "text_completion"}, {"created", created},
                      {"model", model_name}, {"choices", json::array()}, {"usage", usage(*ev)},
                      {"hubnode", expert_loads()}});
          }
          const std::string done = "data: [DONE]\n\n";
          sink.write(done.data(), done.size());
          sink.done();
          return true;
        }
      }
    });
    return;
  }

  // Not streamed: the answer is one JSON document, sent chunked so that a client that leaves is
  // noticed (JSON allows the leading whitespace written while waiting).
  res.set_chunked_content_provider("application/json", [=](size_t, httplib::DataSink& sink) {
    std::string text;
    json lp_content = json::array(), tokens = json::array(), token_lps = json::array(), tops = json::array(),
         offsets = json::array();
    for (;;) {
      auto ev = next_event([&] { return sink.write(" ", 1); });
      if (!ev) return false;
      if (ev->finish == FinishReason::kError) {
        const std::string err = json{{"error", {{"message", ev->error.message()}, {"type", "server_error"},
                                                {"code", StatusCodeName(ev->error.code())}}}}.dump();
        sink.write(err.data(), err.size());
        sink.done();
        return true;
      }
      if (!chat && p.echo && text.empty() && tokens.empty()) {
        text = echo_text;
        if (p.logprobs) {
          json lp = {{"tokens", json::array()}, {"token_logprobs", json::array()}, {"top_logprobs", json::array()},
                     {"text_offset", json::array()}};
          size_t at = 0;
          AddPromptLogprobs(ev->prompt_logprobs, lp, at);
          tokens = lp["tokens"];
          token_lps = lp["token_logprobs"];
          tops = lp["top_logprobs"];
          offsets = lp["text_offset"];
        }
      }
      if (p.logprobs && ev->logprob) {
        if (chat) {
          lp_content.push_back(chat_logprob(*ev));
        } else {
          json top = json::object();
          for (const auto& t : ev->top_logprobs) top[t.text] = t.logprob;
          tokens.push_back(ev->logprob->text);
          token_lps.push_back(ev->logprob->logprob);
          tops.push_back(top);
          offsets.push_back(Chars(text));
        }
      }
      text += ev->text;
      if (ev->finish == FinishReason::kNone) continue;
      json choice = {{"index", 0}, {"finish_reason", FinishReasonName(ev->finish)}, {"logprobs", nullptr}};
      if (chat) {
        choice["message"] = {{"role", "assistant"}, {"content", text}};
        if (p.logprobs) choice["logprobs"] = {{"content", lp_content}};
      } else {
        choice["text"] = text;
        if (p.logprobs) {
          choice["logprobs"] = {{"tokens", tokens}, {"token_logprobs", token_lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
        }
      }
      const json out = {{"id", id}, {"object", chat ? "chat.completion" : "text_completion"}, {"created", created},
                        {"model", model_name}, {"choices", json::array({choice})}, {"usage", usage(*ev)}};
      const std::string s = out.dump(-1, ' ', false, json::error_handler_t::replace);
      sink.write(s.data(), s.size());
      sink.done();
      (void)engine_ref;
      return true;
    }
  });
}

std::string OpenAiApi::Metrics(const std::optional<Principal>& who) const {
  if (host_ == nullptr) return "";
  std::string out;
  auto readable = [&](const std::string& id) {
    auto repo = store::RepoId::Parse(id.substr(0, id.find('@')));
    if (!repo.ok()) return false;
    auto info = st_->GetRepo(*repo);
    return info.ok() && CanRead(who, *info);
  };
  auto line = [&](const std::string& name, const std::string& model, double v) {
    out += name + "{model=\"" + model + "\"} " + std::to_string(v) + "\n";
  };
  for (const LoadedModel& m : host_->Loaded()) {
    if (!readable(m.id)) continue;
    const runtime::EngineStats s = m.engine->stats();
    line("hubnode_runtime_prompt_tokens_total", m.id, s.prompt_tokens);
    line("hubnode_runtime_generated_tokens_total", m.id, s.generated_tokens);
    line("hubnode_runtime_active_requests", m.id, s.active_requests);
    line("hubnode_runtime_queued_requests", m.id, s.queued_requests);
    line("hubnode_runtime_expert_hits_total", m.id, s.expert_hits);
    line("hubnode_runtime_expert_misses_total", m.id, s.expert_misses);
    line("hubnode_runtime_expert_prefetches_total", m.id, s.expert_prefetches);
    line("hubnode_runtime_expert_evictions_total", m.id, s.expert_evictions);
    line("hubnode_runtime_expert_load_seconds_total", m.id, s.expert_load_seconds);
    line("hubnode_runtime_expert_resident_bytes", m.id, s.expert_resident_bytes);
    if (m.reads) {  // the expert tier (docs/decisions.md 46): raw copies of the shards, or chunks
      line("hubnode_runtime_tensor_bytes_raw_total", m.id, m.reads->raw_bytes.load());
      line("hubnode_runtime_tensor_bytes_chunks_total", m.id, m.reads->chunk_bytes.load());
    }
  }
  return out;
}

}  // namespace hubnode::hub
