#include "config/base64.h"

#include <array>
#include <cstdint>

namespace kcp::config {
namespace {

constexpr std::string_view kStandardChars =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kUrlChars =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string_view charsOf(Base64Alphabet alphabet) {
  return alphabet == Base64Alphabet::kUrl ? kUrlChars : kStandardChars;
}

}  // namespace

std::string base64Encode(std::string_view data, Base64Alphabet alphabet) {
  const std::string_view chars = charsOf(alphabet);
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const uint32_t v = uint32_t(uint8_t(data[i])) << 16 | uint32_t(uint8_t(data[i + 1])) << 8 |
                       uint8_t(data[i + 2]);
    out += chars[v >> 18];
    out += chars[(v >> 12) & 63];
    out += chars[(v >> 6) & 63];
    out += chars[v & 63];
  }
  const size_t rest = data.size() - i;
  if (rest > 0) {
    uint32_t v = uint32_t(uint8_t(data[i])) << 16;
    if (rest == 2) v |= uint32_t(uint8_t(data[i + 1])) << 8;
    out += chars[v >> 18];
    out += chars[(v >> 12) & 63];
    if (rest == 2) out += chars[(v >> 6) & 63];
    if (alphabet == Base64Alphabet::kStandard) out.append(3 - rest, '=');
  }
  return out;
}

std::optional<std::string> base64Decode(std::string_view text, Base64Alphabet alphabet) {
  std::array<int8_t, 256> value;
  value.fill(-1);
  const std::string_view chars = charsOf(alphabet);
  for (size_t i = 0; i < chars.size(); ++i) value[uint8_t(chars[i])] = int8_t(i);

  std::string out;
  out.reserve(text.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  size_t padding = 0;
  for (const char c : text) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    if (padding > 0 || value[uint8_t(c)] < 0) return std::nullopt;  // data after padding
    acc = acc << 6 | uint32_t(value[uint8_t(c)]);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xff);
    }
  }
  // 6 leftover bits mean a lone character: not a valid encoding.
  if (bits >= 6 || padding > 2) return std::nullopt;
  return out;
}

}  // namespace kcp::config
