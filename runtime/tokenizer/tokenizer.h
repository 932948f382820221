// Tokenizer: a Hugging Face `tokenizer.json` (BPE model) in C++, id for id with the reference
// huggingface/tokenizers 0.22 implementation for the byte-level BPE files of
// GPT-2/Qwen/Llama-3/OLMoE and the SentencePiece-style BPE files (byte fallback, Metaspace/Prepend)
// of Llama-2/Mistral/Mixtral. Private header of the runtime module.
//
// Pipeline, as in the reference: added tokens are split out of the raw text (those with
// normalized:false first, then those with normalized:true from the normalized rest), each remaining
// piece is normalized, pre-tokenized and given to the BPE model, and with add_special_tokens the
// post-processor adds e.g. BOS. Decoding runs the decoder chain and replaces invalid UTF-8 by
// U+FFFD.
//
// Supported components (anything else is rejected by FromJson, naming the type):
//   model: BPE (vocab, merges as "a b" or ["a","b"], ignore_merges, byte_fallback, unk_token,
//     fuse_unk, continuing_subword_prefix, end_of_word_suffix; dropout is ignored).
//   normalizer: Sequence, Prepend, Replace, Lowercase, Strip, StripAccents, NFC, NFD, NFKC, NFKD.
//   pre_tokenizer: Sequence, Split, ByteLevel, Metaspace, Digits, Punctuation, Whitespace,
//     WhitespaceSplit, BertPreTokenizer, CharDelimiterSplit.
//   post_processor: TemplateProcessing, ByteLevel (no-op on ids), RobertaProcessing,
//   BertProcessing,
//     Sequence.
//   decoder: ByteLevel, Metaspace, Sequence, Replace, ByteFallback, Fuse, Strip.
// `truncation` and `padding` are ignored (Encode never truncates or pads).
//
// Thread safety: a Tokenizer is immutable after FromJson (its BPE cache locks internally); Encode,
// Decode and the accessors may be called from many threads at once. A DecodeStream is
// single-threaded and must not outlive its Tokenizer.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace hubnode::runtime {

class Tokenizer {
 public:
  // Parses tokenizer.json and, when not empty, tokenizer_config.json (read for bos_token,
  // eos_token, either a string or {"content": ...}, and add_bos_token).
  // Errors: InvalidArgument naming the field on malformed or oversized input (tokenizer.json over
  // 64 MB, more than 4M vocab entries or merges, a token over 1 KiB, a bad regex); Unimplemented
  // naming the type for unsupported models, normalizers, pre-tokenizers, decoders, processors.
  static Result<Tokenizer> FromJson(std::string_view tokenizer_json,
                                    std::string_view tokenizer_config_json);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Encodes like HF `tokenizer.encode(text, add_special_tokens=...)`. Invalid UTF-8 in `text` is
  // first replaced by U+FFFD (the reference only accepts valid strings).
  std::vector<int32_t> Encode(std::string_view text, bool add_special_tokens = false) const;

  // Decodes like HF `decode(ids, skip_special_tokens=...)`: unknown ids are dropped, the decoder
  // chain runs over the token strings (joined by " " when there is no decoder), and the result is
  // always valid UTF-8.
  std::string Decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // The bytes one token stands for, as the decoders produce them but without the repair to valid
  // UTF-8: a byte-level token that is part of a multi-byte character gives its raw bytes (what
  // OpenAI's log-prob `bytes` carry), not U+FFFD. "" for an unknown id.
  std::string TokenBytes(int32_t id) const;

  int32_t TokenId(std::string_view token) const;  // -1 when in neither vocab nor added tokens
  std::string_view TokenText(int32_t id) const;   // "" when unknown
  int32_t vocab_size() const;                     // max id + 1 over vocab and added tokens
  bool IsSpecial(int32_t id) const;               // an added token marked special

  // From tokenizer_config.json; -1 / "" when absent or not a known token.
  int32_t bos_id() const;
  int32_t eos_id() const;
  std::string_view bos_token() const;
  std::string_view eos_token() const;
  // tokenizer_config.json's add_bos_token when present, otherwise whether Encode with
  // add_special_tokens starts with bos_id(). Encode itself follows tokenizer.json's post_processor,
  // as the reference does; a caller that renders chat templates uses this to decide on BOS.
  bool add_bos_token() const;

 private:
  friend class DecodeStream;
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);

  // How DecodeStream must treat `id`: dropped by Decode, part of a ByteFallback byte run (which a
  // later token may still turn into U+FFFDs), or an ordinary token.
  enum class StreamKind { kDropped, kByteRun, kOrdinary };
  StreamKind StreamKindOf(int32_t id, bool skip_special_tokens) const;

  std::unique_ptr<Impl> impl_;
};

// Streaming detokenizer for generation. Next(id) returns the text that became final with `id`: it
// holds back a trailing incomplete UTF-8 sequence (text ending in U+FFFD) and, for decoders with
// ByteFallback, a run of <0xNN> tokens until a non-byte token ends it. Flush() returns the rest and
// ends the stream. For the supported decoders the concatenation of all outputs equals
// Decode(all ids); decoding works on a short window (the tokens of the last emission as context
// plus the pending ones), so a step costs O(window), not O(stream).
class DecodeStream {
 public:
  DecodeStream(const Tokenizer& tokenizer, bool skip_special_tokens);

  std::string Next(int32_t id);
  std::string Flush();

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_tokens_;
  std::vector<int32_t> ids_;  // ids_[0, context_) were emitted already; the rest are pending
  size_t context_ = 0;
  std::string context_text_;  // Decode(ids_[0, context_))
};

}  // namespace hubnode::runtime
