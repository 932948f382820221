// Unicode helpers for the tokenizer: UTF-8 walking and repair, the character classes that the
// Hugging Face tokenizers crate takes from Rust's `char` methods and `regex` crate, Unicode
// normalization forms, and GPT-2's byte-to-character alphabet.
//
// The Rust semantics matter because tokenizer output must match the reference id for id: for
// example
// `\w` (single_word added tokens) is Rust regex's Unicode word class, not PCRE2's, and invalid
// UTF-8 is replaced the way `String::from_utf8_lossy` does it.
//
// Thread safety: all functions are pure and may be called concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace hubnode::runtime {

inline constexpr char32_t kReplacementChar = 0xFFFD;

// One decoded character. `len` is its byte length (1..4).
struct Utf8Char {
  char32_t cp;
  int len;
};

// Decodes the character at `pos`. REQUIRES: `s` is valid UTF-8 and pos < s.size() is a character
// boundary (every string inside the tokenizer is repaired by ToValidUtf8 first).
Utf8Char DecodeUtf8At(std::string_view s, size_t pos);

// Appends the UTF-8 encoding of `cp` (a Unicode scalar value) to `out`.
void AppendUtf8(char32_t cp, std::string* out);

// True when `s` is well-formed UTF-8 (no surrogates, no overlongs, <= U+10FFFF).
bool IsValidUtf8(std::string_view s);

// Replaces every maximal invalid subsequence with U+FFFD, exactly like Rust's
// `String::from_utf8_lossy` (which is what HF decoders and JS bindings use).
std::string ToValidUtf8(std::string_view s);

// Rust `char::is_whitespace`: the Unicode White_Space property.
bool IsWhitespace(char32_t c);
// Rust regex `\w` with Unicode: Alphabetic, marks, decimal digits, connector punctuation, joiners.
bool IsWordChar(char32_t c);
// Rust `char::is_numeric`: general categories Nd, Nl, No.
bool IsNumeric(char32_t c);
// Rust `c.is_ascii_punctuation() || c.is_punctuation()` (general category P*).
bool IsPunctuation(char32_t c);
// General category Mn (what the StripAccents normalizer removes after NFD).
bool IsNonSpacingMark(char32_t c);

enum class NormalForm { kNfc, kNfd, kNfkc, kNfkd };

// Applies a Unicode normalization form. REQUIRES: `s` is valid UTF-8. Internal if ICU fails.
Result<std::string> NormalizeUnicode(NormalForm form, std::string_view s);

// Lowercases character by character like tokenizers' NormalizedString::lowercase (Rust
// `char::to_lowercase`: full mapping, no locale, no context such as final sigma).
// REQUIRES: `s` is valid UTF-8.
std::string ToLowerUnicode(std::string_view s);

// GPT-2 byte-level alphabet (tokenizers `bytes_char()`): printable bytes map to themselves, the
// rest to U+0100 onwards. ByteLevelChar returns the UTF-8 of the character for `byte`.
std::string_view ByteLevelChar(uint8_t byte);
// The byte a byte-level character stands for, or -1 when `c` is not in the alphabet.
int ByteLevelByte(char32_t c);

}  // namespace hubnode::runtime
