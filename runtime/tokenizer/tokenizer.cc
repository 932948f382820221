// Tokenizer: tokenizer.json / tokenizer_config.json parsing, post-processors, Encode and Decode.
#include "runtime/tokenizer/tokenizer.h"

#include "base/json_limits.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "runtime/tokenizer/tokenizer_added.h"
#include "runtime/tokenizer/tokenizer_bpe.h"
#include "runtime/tokenizer/tokenizer_json.h"
#include "runtime/tokenizer/tokenizer_pipeline.h"
#include "runtime/tokenizer/unicode.h"

namespace hubnode::runtime {
namespace {

constexpr size_t kMaxJsonBytes = 64 << 20;

// One post-processing step: the items of a template, each the encoded sequence or a run of
// special token ids. `Sequence` processors become several steps applied in order.
struct TemplateItem {
  bool is_sequence = false;
  std::vector<int32_t> ids;
};
using TemplateStep = std::vector<TemplateItem>;

Result<std::vector<int32_t>> SpecialIds(const Json& special_tokens, const std::string& name,
                                        std::string_view path) {
  const std::string where = JoinPath(path, "special_tokens");
  const Json* entry = Member(special_tokens, name);
  if (entry == nullptr) return FieldError(where, "no entry for \"" + name + "\"");
  const Json* ids = Member(*entry, "ids");
  if (ids == nullptr || !ids->is_array() || ids->size() > 64) {
    return FieldError(JoinPath(where, name), "expected \"ids\": [id, ...]");
  }
  std::vector<int32_t> out;
  for (const Json& id : *ids) {
    ASSIGN_OR_RETURN(const int64_t v, IntValue(id, JoinPath(where, name), 0, kMaxTokenId - 1));
    out.push_back(static_cast<int32_t>(v));
  }
  return out;
}

Result<TemplateStep> ParseTemplate(const Json& json, std::string_view path) {
  const Json* single = Member(json, "single");
  const std::string where = JoinPath(path, "single");
  if (single == nullptr) return FieldError(where, "missing");
  const Json empty = Json::object();
  const Json* special = Member(json, "special_tokens");
  if (special == nullptr) special = &empty;
  if (!special->is_object())
    return FieldError(JoinPath(path, "special_tokens"), "expected an object");
  TemplateStep step;
  auto add_special = [&](const std::string& name) -> Status {
    ASSIGN_OR_RETURN(std::vector<int32_t> ids, SpecialIds(*special, name, path));
    step.push_back({false, std::move(ids)});
    return OkStatus();
  };
  if (single->is_string()) {
    // The compact form, e.g. "<s> $A" or "[CLS]:0 $A:0 [SEP]:0".
    const std::string& s = single->get_ref<const std::string&>();
    size_t pos = 0;
    while (pos < s.size()) {
      const size_t end = std::min(s.find(' ', pos), s.size());
      std::string piece = s.substr(pos, end - pos);
      pos = end + 1;
      if (piece.empty()) continue;
      const size_t colon = piece.rfind(':');
      if (colon != std::string::npos && colon > 0) piece.resize(colon);
      if (piece[0] == '$') {
        step.push_back({true, {}});
      } else {
        RETURN_IF_ERROR(add_special(piece));
      }
    }
    return step;
  }
  if (!single->is_array() || single->size() > 64) return FieldError(where, "expected an array");
  for (const Json& item : *single) {
    if (const Json* sp = Member(item, "SpecialToken")) {
      const Json* id = Member(*sp, "id");
      if (id == nullptr || !id->is_string()) return FieldError(where, "SpecialToken without id");
      RETURN_IF_ERROR(add_special(id->get<std::string>()));
    } else if (Member(item, "Sequence") != nullptr) {
      step.push_back({true, {}});
    } else {
      return FieldError(where, "expected SpecialToken or Sequence items");
    }
  }
  return step;
}

Result<std::vector<int32_t>> TokenAndId(const Json& json, std::string_view key,
                                        std::string_view path) {
  const Json* v = Member(json, key);
  if (v == nullptr || !v->is_array() || v->size() != 2 || !(*v)[0].is_string()) {
    return FieldError(JoinPath(path, key), "expected [token, id]");
  }
  ASSIGN_OR_RETURN(const int64_t id, IntValue((*v)[1], JoinPath(path, key), 0, kMaxTokenId - 1));
  return std::vector<int32_t>{static_cast<int32_t>(id)};
}

Status ParsePostProcessor(const Json& json, std::string_view path, int depth,
                          std::vector<TemplateStep>* steps) {
  if (depth > kMaxJsonNesting) return FieldError(path, "nested too deeply");
  ASSIGN_OR_RETURN(const std::string type, TypeOf(json, path));
  if (type == "ByteLevel") return OkStatus();  // only adjusts offsets
  if (type == "TemplateProcessing") {
    ASSIGN_OR_RETURN(TemplateStep step, ParseTemplate(json, path));
    steps->push_back(std::move(step));
    return OkStatus();
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    ASSIGN_OR_RETURN(std::vector<int32_t> cls, TokenAndId(json, "cls", path));
    ASSIGN_OR_RETURN(std::vector<int32_t> sep, TokenAndId(json, "sep", path));
    steps->push_back({{false, std::move(cls)}, {true, {}}, {false, std::move(sep)}});
    return OkStatus();
  }
  if (type == "Sequence") {
    const Json* list = Member(json, "processors");
    if (list == nullptr || !list->is_array()) {
      return FieldError(JoinPath(path, "processors"), "expected an array");
    }
    for (size_t i = 0; i < list->size(); ++i) {
      RETURN_IF_ERROR(ParsePostProcessor(
          (*list)[i], JoinPath(path, "processors[" + std::to_string(i) + "]"), depth + 1, steps));
    }
    return OkStatus();
  }
  return UnimplementedError("tokenizer.json: " + std::string(path) + ": post_processor type \"" +
                            type + "\" is not supported");
}

// bos_token / eos_token in tokenizer_config.json: a string or an AddedToken dict.
Result<std::string> ConfigToken(const Json& config, std::string_view key) {
  const Json* v = Member(config, key);
  if (v == nullptr) return std::string();
  if (v->is_string()) return v->get<std::string>();
  if (const Json* content = Member(*v, "content"); content != nullptr && content->is_string()) {
    return content->get<std::string>();
  }
  return InvalidArgumentError("tokenizer_config.json: " + std::string(key) +
                              ": expected a string or {\"content\": ...}");
}

Result<Json> ParseJsonText(std::string_view text, std::string_view name) {
  if (text.size() > kMaxJsonBytes) {
    return InvalidArgumentError(std::string(name) + ": larger than 64 MB");
  }
  if (!JsonDepthWithin(text)) {
    return InvalidArgumentError(std::string(name) + ": nested too deeply (more than " +
                                std::to_string(kMaxJsonDepth) + " levels)");
  }
  Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return InvalidArgumentError(std::string(name) + ": not valid JSON");
  if (!json.is_object()) return InvalidArgumentError(std::string(name) + ": expected an object");
  return json;
}

}  // namespace

struct Tokenizer::Impl {
  std::unique_ptr<BpeModel> model;
  std::unique_ptr<Normalizer> normalizer;       // null when none
  std::unique_ptr<PreTokenizer> pre_tokenizer;  // null when none
  std::unique_ptr<Decoder> decoder;             // null when none
  std::vector<TemplateStep> post;
  AddedVocabulary added;
  std::string bos_token;
  std::string eos_token;
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  int add_bos_token = -1;  // -1 unset, else 0/1 from tokenizer_config.json

  // The string the decoder sees for `id`: the added token's content first, then the vocab's.
  std::optional<std::string_view> TokenString(int32_t id) const {
    if (const AddedToken* t = added.FindById(id)) return t->content;
    const std::string_view text = model->TokenText(id);
    if (text.data() == nullptr) return std::nullopt;  // outside the vocab or a gap in its ids
    return text;
  }
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Result<Tokenizer> Tokenizer::FromJson(std::string_view tokenizer_json,
                                      std::string_view tokenizer_config_json) {
  ASSIGN_OR_RETURN(const Json root, ParseJsonText(tokenizer_json, "tokenizer.json"));
  auto impl = std::make_unique<Impl>();
  if (const Json* version = Member(root, "version")) {
    if (!version->is_string() || version->get_ref<const std::string&>() != "1.0") {
      return FieldError("version", "expected \"1.0\"");
    }
  }
  const Json* model = Member(root, "model");
  if (model == nullptr) return FieldError("model", "missing");
  ASSIGN_OR_RETURN(impl->model, BpeModel::FromJson(*model, "model"));
  if (const Json* n = Member(root, "normalizer")) {
    ASSIGN_OR_RETURN(impl->normalizer, ParseNormalizer(*n, "normalizer"));
  }
  if (const Json* p = Member(root, "pre_tokenizer")) {
    ASSIGN_OR_RETURN(impl->pre_tokenizer, ParsePreTokenizer(*p, "pre_tokenizer"));
  }
  if (const Json* d = Member(root, "decoder")) {
    ASSIGN_OR_RETURN(impl->decoder, ParseDecoder(*d, "decoder"));
  }
  if (const Json* pp = Member(root, "post_processor")) {
    RETURN_IF_ERROR(ParsePostProcessor(*pp, "post_processor", 0, &impl->post));
  }
  std::vector<AddedToken> added;
  if (const Json* list = Member(root, "added_tokens")) {
    if (!list->is_array()) return FieldError("added_tokens", "expected an array");
    for (size_t i = 0; i < list->size(); ++i) {
      const Json& item = (*list)[i];
      const std::string where = "added_tokens[" + std::to_string(i) + "]";
      if (!item.is_object()) return FieldError(where, "expected an object");
      AddedToken t;
      ASSIGN_OR_RETURN(t.content, StringMember(item, "content", where));
      if (t.content.size() > kMaxTokenBytes) return FieldError(where, "content longer than 1 KiB");
      ASSIGN_OR_RETURN(const int64_t id, IntMemberOr(item, "id", where, 0, 0, kMaxTokenId - 1));
      t.id = static_cast<int32_t>(id);
      ASSIGN_OR_RETURN(t.single_word, BoolMemberOr(item, "single_word", where, false));
      ASSIGN_OR_RETURN(t.lstrip, BoolMemberOr(item, "lstrip", where, false));
      ASSIGN_OR_RETURN(t.rstrip, BoolMemberOr(item, "rstrip", where, false));
      ASSIGN_OR_RETURN(t.special, BoolMemberOr(item, "special", where, false));
      ASSIGN_OR_RETURN(t.normalized, BoolMemberOr(item, "normalized", where, !t.special));
      added.push_back(std::move(t));
    }
  }
  RETURN_IF_ERROR(impl->added.Build(std::move(added), *impl->model, impl->normalizer.get()));

  if (!tokenizer_config_json.empty()) {
    ASSIGN_OR_RETURN(const Json config,
                     ParseJsonText(tokenizer_config_json, "tokenizer_config.json"));
    ASSIGN_OR_RETURN(impl->bos_token, ConfigToken(config, "bos_token"));
    ASSIGN_OR_RETURN(impl->eos_token, ConfigToken(config, "eos_token"));
    if (const Json* add = Member(config, "add_bos_token")) {
      if (!add->is_boolean()) {
        return InvalidArgumentError("tokenizer_config.json: add_bos_token: expected a boolean");
      }
      impl->add_bos_token = add->get<bool>() ? 1 : 0;
    }
  }
  Tokenizer tokenizer(std::move(impl));
  Impl& i = *tokenizer.impl_;
  if (!i.bos_token.empty()) i.bos_id = tokenizer.TokenId(i.bos_token);
  if (!i.eos_token.empty()) i.eos_id = tokenizer.TokenId(i.eos_token);
  if (i.bos_id < 0) i.bos_token.clear();
  if (i.eos_id < 0) i.eos_token.clear();
  return tokenizer;
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_special_tokens) const {
  const Impl& impl = *impl_;
  std::string repaired;
  if (!IsValidUtf8(text)) {
    repaired = ToValidUtf8(text);
    text = repaired;
  }
  std::vector<Piece> pieces;
  impl.added.ExtractAndNormalize(text, impl.normalizer.get(), &pieces);
  if (impl.pre_tokenizer != nullptr) impl.pre_tokenizer->Apply(&pieces);
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  for (const Piece& p : pieces) {
    if (p.id >= 0) {
      ids.push_back(p.id);
    } else {
      impl.model->Tokenize(p.text, &ids);
    }
  }
  if (!add_special_tokens) return ids;
  for (const TemplateStep& step : impl.post) {
    std::vector<int32_t> next;
    next.reserve(ids.size() + 4);
    for (const TemplateItem& item : step) {
      const std::vector<int32_t>& part = item.is_sequence ? ids : item.ids;
      next.insert(next.end(), part.begin(), part.end());
    }
    ids = std::move(next);
  }
  return ids;
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  const Impl& impl = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const int32_t id : ids) {
    const std::optional<std::string_view> token = impl.TokenString(id);
    if (!token.has_value()) continue;
    if (skip_special_tokens && impl.added.IsSpecialContent(*token)) continue;
    tokens.emplace_back(*token);
  }
  std::string out;
  if (impl.decoder == nullptr) {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) out += ' ';
      out += tokens[i];
    }
    return out;
  }
  impl.decoder->DecodeChain(&tokens);
  for (const std::string& t : tokens) out += t;
  return out;
}

std::string Tokenizer::TokenBytes(int32_t id) const {
  const std::optional<std::string_view> token = impl_->TokenString(id);
  if (!token.has_value()) return "";
  std::vector<std::string> tokens = {std::string(*token)};
  if (impl_->decoder == nullptr) return tokens[0];
  impl_->decoder->DecodeChainRaw(&tokens);
  std::string out;
  for (const std::string& t : tokens) out += t;
  return out;
}

Tokenizer::StreamKind Tokenizer::StreamKindOf(int32_t id, bool skip_special_tokens) const {
  const std::optional<std::string_view> token = impl_->TokenString(id);
  if (!token.has_value() || (skip_special_tokens && impl_->added.IsSpecialContent(*token))) {
    return StreamKind::kDropped;
  }
  if (impl_->decoder != nullptr && impl_->decoder->HasByteFallback() &&
      ByteFallbackValue(*token) >= 0) {
    return StreamKind::kByteRun;
  }
  return StreamKind::kOrdinary;
}

int32_t Tokenizer::TokenId(std::string_view token) const {
  const int32_t added = impl_->added.FindByContent(token);
  return added >= 0 ? added : impl_->model->TokenId(token);
}

std::string_view Tokenizer::TokenText(int32_t id) const {
  return impl_->TokenString(id).value_or(std::string_view());
}

int32_t Tokenizer::vocab_size() const {
  return std::max(impl_->model->max_id(), impl_->added.max_id()) + 1;
}

bool Tokenizer::IsSpecial(int32_t id) const {
  const AddedToken* t = impl_->added.FindById(id);
  return t != nullptr && impl_->added.IsSpecialContent(t->content);
}

int32_t Tokenizer::bos_id() const { return impl_->bos_id; }
int32_t Tokenizer::eos_id() const { return impl_->eos_id; }
std::string_view Tokenizer::bos_token() const { return impl_->bos_token; }
std::string_view Tokenizer::eos_token() const { return impl_->eos_token; }

bool Tokenizer::add_bos_token() const {
  if (impl_->add_bos_token >= 0) return impl_->add_bos_token == 1;
  if (impl_->bos_id < 0) return false;
  const std::vector<int32_t> probe = Encode("", /*add_special_tokens=*/true);
  return !probe.empty() && probe.front() == impl_->bos_id;
}

}  // namespace hubnode::runtime
