#include "runtime/tokenizer/unicode.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <array>

namespace hubnode::runtime {
namespace {

// Width of a UTF-8 sequence from its lead byte, 0 for bytes that cannot start one.
int LeadWidth(uint8_t b) {
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 0;
}

bool IsCont(uint8_t b) { return (b & 0xC0) == 0x80; }

// The allowed range of the second byte depends on the lead byte: this is what rules out overlongs,
// surrogates and code points above U+10FFFF (Unicode table 3-7).
bool SecondByteOk(uint8_t lead, uint8_t b) {
  switch (lead) {
    case 0xE0:
      return b >= 0xA0 && b <= 0xBF;
    case 0xED:
      return b >= 0x80 && b <= 0x9F;
    case 0xF0:
      return b >= 0x90 && b <= 0xBF;
    case 0xF4:
      return b >= 0x80 && b <= 0x8F;
    default:
      return IsCont(b);
  }
}

// Length of the valid sequence at `pos`, or the negated length of the maximal invalid prefix that
// Rust's lossy conversion turns into one U+FFFD.
int SequenceAt(std::string_view s, size_t pos) {
  const uint8_t lead = static_cast<uint8_t>(s[pos]);
  const int width = LeadWidth(lead);
  if (width == 1) return 1;
  if (width == 0) return -1;
  size_t i = pos + 1;
  if (i >= s.size() || !SecondByteOk(lead, static_cast<uint8_t>(s[i]))) return -1;
  for (int k = 2; k < width; ++k) {
    ++i;
    if (i >= s.size() || !IsCont(static_cast<uint8_t>(s[i]))) return -static_cast<int>(i - pos);
  }
  return width;
}

struct ByteLevelTables {
  std::array<std::string, 256> byte_to_char;
  std::array<int16_t, 324> char_to_byte;  // the alphabet lies below U+0144
};

const ByteLevelTables& Tables() {
  static const ByteLevelTables tables = [] {
    ByteLevelTables built;
    ByteLevelTables* t = &built;
    t->char_to_byte.fill(-1);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const char32_t c = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(next++);
      AppendUtf8(c, &t->byte_to_char[b]);
      t->char_to_byte[c] = static_cast<int16_t>(b);
    }
    return built;
  }();
  return tables;
}

std::string FromUnicodeString(const icu::UnicodeString& u) {
  std::string out;
  u.toUTF8String(out);
  return out;
}

}  // namespace

Utf8Char DecodeUtf8At(std::string_view s, size_t pos) {
  const uint8_t b0 = static_cast<uint8_t>(s[pos]);
  if (b0 < 0x80) return {b0, 1};
  const int width = LeadWidth(b0);
  if (width < 2 || pos + width > s.size()) return {kReplacementChar, 1};  // defensive only
  char32_t cp = b0 & (0xFF >> (width + 1));
  for (int k = 1; k < width; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[pos + k]) & 0x3F);
  return {cp, width};
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const int n = SequenceAt(s, i);
    if (n < 0) return false;
    i += n;
  }
  return true;
}

std::string ToValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const int n = SequenceAt(s, i);
    if (n > 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      AppendUtf8(kReplacementChar, &out);
      i += -n;
    }
  }
  return out;
}

bool IsWhitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

bool IsWordChar(char32_t c) {
  if (c < 0x80)
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  const UChar32 u = static_cast<UChar32>(c);
  if (u_hasBinaryProperty(u, UCHAR_ALPHABETIC) || u_hasBinaryProperty(u, UCHAR_JOIN_CONTROL))
    return true;
  const int32_t mask = U_GET_GC_MASK(u);
  return (mask & (U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK)) != 0;
}

bool IsNumeric(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_N_MASK) != 0; }

bool IsPunctuation(char32_t c) {
  if (c < 0x80) {
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
           (c >= 0x7B && c <= 0x7E);
  }
  return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_P_MASK) != 0;
}

bool IsNonSpacingMark(char32_t c) {
  return u_charType(static_cast<UChar32>(c)) == U_NON_SPACING_MARK;
}

Result<std::string> NormalizeUnicode(NormalForm form, std::string_view s) {
  UErrorCode err = U_ZERO_ERROR;
  const icu::Normalizer2* n = nullptr;
  switch (form) {
    case NormalForm::kNfc:
      n = icu::Normalizer2::getNFCInstance(err);
      break;
    case NormalForm::kNfd:
      n = icu::Normalizer2::getNFDInstance(err);
      break;
    case NormalForm::kNfkc:
      n = icu::Normalizer2::getNFKCInstance(err);
      break;
    case NormalForm::kNfkd:
      n = icu::Normalizer2::getNFKDInstance(err);
      break;
  }
  if (U_FAILURE(err) || n == nullptr) return InternalError("ICU normalizer unavailable");
  const icu::UnicodeString in =
      icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), static_cast<int32_t>(s.size())));
  // Most text is already normalized; the quick check avoids building a second copy.
  if (n->isNormalized(in, err) && U_SUCCESS(err)) return std::string(s);
  err = U_ZERO_ERROR;
  const icu::UnicodeString out = n->normalize(in, err);
  if (U_FAILURE(err)) return InternalError(std::string("ICU normalize: ") + u_errorName(err));
  return FromUnicodeString(out);
}

std::string ToLowerUnicode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const Utf8Char c = DecodeUtf8At(s, i);
    i += c.len;
    if (c.cp < 0x80) {
      out.push_back(static_cast<char>(c.cp >= 'A' && c.cp <= 'Z' ? c.cp - 'A' + 'a' : c.cp));
    } else if (c.cp == 0x130) {
      // The one unconditional multi-character lowercase mapping (SpecialCasing.txt).
      out += "i\xCC\x87";
    } else {
      AppendUtf8(static_cast<char32_t>(u_tolower(static_cast<UChar32>(c.cp))), &out);
    }
  }
  return out;
}

std::string_view ByteLevelChar(uint8_t byte) { return Tables().byte_to_char[byte]; }

int ByteLevelByte(char32_t c) {
  if (c >= Tables().char_to_byte.size()) return -1;
  return Tables().char_to_byte[c];
}

}  // namespace hubnode::runtime
