#include "proxy/auth/access_review.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace kcp::proxy {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void writeString(Writer& w, const std::string& s) {
  w.String(s.data(), rapidjson::SizeType(s.size()));
}

// One UTF-8 sequence at `s[i]`: the code point and its length, or -1 and 1
// for a byte that starts no valid sequence (as Go's utf8.DecodeRuneInString).
std::pair<int32_t, size_t> decodeRune(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return uint8_t(s[i + k]); };
  const uint8_t c = b(0);
  if (c < 0x80) return {c, 1};
  const auto cont = [&](size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF && cont(1)) return {int32_t(c & 0x1F) << 6 | (b(1) & 0x3F), 2};
  if (c >= 0xE0 && c <= 0xEF && cont(1) && cont(2)) {
    const int32_t r = int32_t(c & 0x0F) << 12 | int32_t(b(1) & 0x3F) << 6 | (b(2) & 0x3F);
    if (r >= 0x800 && (r < 0xD800 || r > 0xDFFF)) return {r, 3};
  }
  if (c >= 0xF0 && c <= 0xF4 && cont(1) && cont(2) && cont(3)) {
    const int32_t r = int32_t(c & 0x07) << 18 | int32_t(b(1) & 0x3F) << 12 |
                      int32_t(b(2) & 0x3F) << 6 | (b(3) & 0x3F);
    if (r >= 0x10000 && r <= 0x10FFFF) return {r, 4};
  }
  return {-1, 1};
}

// unicode.IsPrint for what names hold: Go's tables in short. Controls,
// format characters, separators other than ' ' and private use are not.
bool isPrint(int32_t r) {
  if (r < 0x80) return r >= 0x20 && r < 0x7F;
  if (r < 0xA0 || r == 0xA0 || r == 0xAD || r == 0x061C || r == 0x1680 || r == 0x180E) return false;
  if ((r >= 0x2000 && r <= 0x200F) || (r >= 0x2028 && r <= 0x202F) || (r >= 0x205F && r <= 0x206F))
    return false;
  if (r == 0x3000 || r == 0xFEFF || (r >= 0xFFF9 && r <= 0xFFFB) || (r >= 0xE000 && r <= 0xF8FF))
    return false;
  return r < 0xF0000;  // planes 15 and 16 are private use
}

void appendHex(std::string& out, uint32_t v, int digits) {
  static const char kHex[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i) out += kHex[(v >> (4 * i)) & 0xF];
}

// responsewriters' sanitizer: &, < and > in a forbidden message.
std::string sanitized(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '&') {
      out += "&amp;";
    } else if (c == '<') {
      out += "&lt;";
    } else if (c == '>') {
      out += "&gt;";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string goQuote(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    const auto [r, width] = decodeRune(s, i);
    if (r < 0) {
      out += "\\x";
      appendHex(out, uint8_t(s[i]), 2);
    } else if (r == '"' || r == '\\') {
      out += '\\';
      out += char(r);
    } else if (isPrint(r)) {
      out.append(s.substr(i, width));
    } else if (r == '\a' || r == '\b' || r == '\f' || r == '\n' || r == '\r' || r == '\t' ||
               r == '\v') {
      out += '\\';
      out += "abfnrtv"[std::string_view("\a\b\f\n\r\t\v").find(char(r))];
    } else if (r < ' ' || r == 0x7F) {
      out += "\\x";
      appendHex(out, uint32_t(r), 2);
    } else if (r < 0x10000) {
      out += "\\u";
      appendHex(out, uint32_t(r), 4);
    } else {
      out += "\\U";
      appendHex(out, uint32_t(r), 8);
    }
    i += width;
  }
  return out + "\"";
}

AccessAttributes requestAttributes(const RequestInfo& info, const UserInfo& user) {
  AccessAttributes a;
  a.user = user;
  a.verb = info.verb;
  a.resource_request = info.is_resource_request;
  if (!info.is_resource_request) {
    a.path = info.path;
    return a;
  }
  a.group = info.api_group;
  a.version = info.api_version;
  a.resource = info.resource;
  a.subresource = info.subresource;
  a.namespace_ = info.namespace_;
  a.name = info.name;
  a.field_selector = info.field_selector;
  a.label_selector = info.label_selector;
  return a;
}

std::string subjectAccessReviewJson(const AccessAttributes& a) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("apiVersion");
  w.String("authorization.k8s.io/v1");
  w.Key("kind");
  w.String("SubjectAccessReview");
  w.Key("spec");
  w.StartObject();
  const auto fields = [&w](std::initializer_list<std::pair<const char*, const std::string*>> list) {
    for (const auto& [name, value] : list) {
      if (value->empty()) continue;
      w.Key(name);
      writeString(w, *value);
    }
  };
  if (a.resource_request) {
    w.Key("resourceAttributes");
    w.StartObject();
    fields({{"namespace", &a.namespace_},
            {"verb", &a.verb},
            {"group", &a.group},
            {"version", &a.version},
            {"resource", &a.resource},
            {"subresource", &a.subresource},
            {"name", &a.name}});
    // kube-apiserver parses these as its authorization filter does.
    for (const auto& [key, raw] :
         {std::pair{"fieldSelector", &a.field_selector}, {"labelSelector", &a.label_selector}}) {
      if (raw->empty()) continue;
      w.Key(key);
      w.StartObject();
      w.Key("rawSelector");
      writeString(w, *raw);
      w.EndObject();
    }
    w.EndObject();
  } else {
    w.Key("nonResourceAttributes");
    w.StartObject();
    fields({{"path", &a.path}, {"verb", &a.verb}});
    w.EndObject();
  }
  const UserInfo& user = a.user;
  w.Key("user");
  writeString(w, user.name);
  if (!user.uid.empty()) {
    w.Key("uid");
    writeString(w, user.uid);
  }
  w.Key("groups");
  w.StartArray();
  for (const auto& g : user.groups) writeString(w, g);
  w.EndArray();
  if (!user.extra.empty()) {
    w.Key("extra");
    w.StartObject();
    for (const auto& [k, values] : user.extra) {
      writeString(w, k);
      w.StartArray();
      for (const auto& v : values) writeString(w, v);
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  return buf.GetString();
}

std::string accessKey(const AccessAttributes& a) {
  // Length-prefixed parts: no two different attribute sets share a key.
  std::string key;
  const auto part = [&key](const std::string& s) {
    key += std::to_string(s.size());
    key += ':';
    key += s;
  };
  part(a.user.name);
  part(a.user.uid);
  for (const auto& g : a.user.groups) part(g);
  key += '|';
  for (const auto& [k, values] : a.user.extra) {
    part(k);
    for (const auto& v : values) part(v);
    key += ';';
  }
  key += a.resource_request ? "|r" : "|n";
  for (const auto* s : {&a.verb, &a.group, &a.version, &a.resource, &a.subresource, &a.namespace_,
                        &a.name, &a.field_selector, &a.label_selector, &a.path}) {
    part(*s);
  }
  return key;
}

encoder::Status forbiddenStatus(const AccessAttributes& a, const std::string& reason) {
  const std::string user = goQuote(a.user.name);
  std::string message;
  if (!a.resource_request) {
    message = "User " + user + " cannot " + a.verb + " path " + goQuote(a.path);
  } else {
    const std::string resource =
        a.subresource.empty() ? a.resource : a.resource + "/" + a.subresource;
    message = "User " + user + " cannot " + a.verb + " resource " + goQuote(resource) +
              " in API group " + goQuote(a.group);
    message += a.namespace_.empty() ? " at the cluster scope"
                                    : " in the namespace " + goQuote(a.namespace_);
  }
  message = sanitized(message);
  if (!reason.empty()) message += ": " + reason;
  // apierrors.NewForbidden: the qualified resource (group.resource) and the name.
  const std::string qualified = a.group.empty() ? a.resource : a.resource + "." + a.group;
  if (qualified.empty()) {
    message = "forbidden: " + message;
  } else {
    message = (a.name.empty() ? qualified : qualified + " " + goQuote(a.name)) +
              " is forbidden: " + message;
  }
  return {403, "Forbidden", message, {a.name, a.group, a.resource}};
}

}  // namespace kcp::proxy
