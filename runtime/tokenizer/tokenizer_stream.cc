// DecodeStream: incremental detokenization for generation.
//
// The approach is the reference's DecodeStream (tokenizers 0.21+): decode a short window of ids,
// made of the tokens of the previous emission (context, so that decoders which treat the first
// token specially, like Strip or Metaspace, see the same neighbourhood as a full decode) plus the
// pending tokens, and emit what the window decodes to beyond the context's own text.
#include <utility>

#include "runtime/tokenizer/tokenizer.h"

namespace hubnode::runtime {
namespace {

bool EndsWithReplacementChar(std::string_view s) {
  return s.size() >= 3 && s.substr(s.size() - 3) == "\xEF\xBF\xBD";
}

}  // namespace

DecodeStream::DecodeStream(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(&tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::string DecodeStream::Next(int32_t id) {
  ids_.push_back(id);
  switch (tokenizer_->StreamKindOf(id, skip_special_tokens_)) {
    case Tokenizer::StreamKind::kByteRun:
      // ByteFallback turns the whole run into U+FFFDs if it ends up invalid: nothing in it is
      // final.
      return "";
    case Tokenizer::StreamKind::kDropped:
      // Decode never sees this id, so it neither ends a byte run nor adds text.
      return "";
    case Tokenizer::StreamKind::kOrdinary:
      break;
  }
  std::string text = tokenizer_->Decode(ids_, skip_special_tokens_);
  // A trailing U+FFFD may be an incomplete UTF-8 sequence that the next token completes.
  if (text.size() <= context_text_.size() || EndsWithReplacementChar(text) ||
      text.compare(0, context_text_.size(), context_text_) != 0) {
    return "";
  }
  std::string out = text.substr(context_text_.size());
  // The tokens just emitted become the context of the next window.
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(context_));
  context_ = ids_.size();
  context_text_ = tokenizer_->Decode(ids_, skip_special_tokens_);
  return out;
}

std::string DecodeStream::Flush() {
  std::string text = tokenizer_->Decode(ids_, skip_special_tokens_);
  std::string out;
  if (text.compare(0, context_text_.size(), context_text_) == 0) {
    out = text.substr(context_text_.size());
  } else {
    // Only a decoder outside the supported set can rewrite already-emitted text; emit what
    // follows the common prefix rather than repeat it.
    size_t common = 0;
    while (common < text.size() && common < context_text_.size() &&
           text[common] == context_text_[common]) {
      ++common;
    }
    out = text.substr(common);
  }
  ids_.clear();
  context_ = 0;
  context_text_.clear();
  return out;
}

}  // namespace hubnode::runtime
