#include "encoder/go_json.h"

#include <cstdint>

namespace kcp::encoder {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void appendUnicodeEscape(std::string& out, uint32_t code) {
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(code >> shift) & 0xf];
}

// Length of the valid UTF-8 sequence at s[i], or 0 if it is invalid (Go's
// utf8.DecodeRuneInString rules: no overlongs, no surrogates, max U+10FFFF).
size_t validUtf8Length(std::string_view s, size_t i, uint32_t& code) {
  const auto byte = [&](size_t k) { return uint8_t(s[i + k]); };
  const uint8_t b0 = byte(0);
  size_t n;
  uint32_t min;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    n = 2, code = b0 & 0x1f, min = 0x80;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    n = 3, code = b0 & 0x0f, min = 0x800;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    n = 4, code = b0 & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(k) & 0xc0) != 0x80) return 0;
    code = code << 6 | (byte(k) & 0x3f);
  }
  if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return 0;
  return n;
}

}  // namespace

void appendGoJsonString(std::string& out, std::string_view s) {
  out += '"';
  size_t start = 0;  // start of the pending run of bytes that need no escaping
  for (size_t i = 0; i < s.size();) {
    const uint8_t c = uint8_t(s[i]);
    if (c < 0x80) {
      if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
        ++i;
        continue;
      }
      out.append(s.data() + start, i - start);
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          appendUnicodeEscape(out, c);
      }
      start = ++i;
      continue;
    }
    uint32_t code = 0;
    const size_t n = validUtf8Length(s, i, code);
    if (n == 0) {
      out.append(s.data() + start, i - start);
      out += "\ufffd";
      start = ++i;
    } else if (code == 0x2028 || code == 0x2029) {
      out.append(s.data() + start, i - start);
      appendUnicodeEscape(out, code);
      start = i += n;
    } else {
      i += n;
    }
  }
  out.append(s.data() + start, s.size() - start);
  out += '"';
}

}  // namespace kcp::encoder
