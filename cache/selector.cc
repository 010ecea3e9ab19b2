#include "cache/selector.h"

#include <algorithm>
#include <charconv>
#include <cstdint>

namespace kcp::cache {
namespace {

bool isAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9], at most 63 characters.
bool isQualifiedNamePart(std::string_view s) {
  if (s.empty() || s.size() > 63 || !isAlnum(s.front()) || !isAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return isAlnum(c) || c == '-' || c == '_' || c == '.'; });
}

// A DNS-1123 subdomain: lower-case labels joined by '.', at most 253 characters.
bool isDnsSubdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (true) {
    const size_t dot = s.find('.', start);
    const std::string_view label =
        s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty()) return false;
    const auto lower_alnum = [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    };
    if (!lower_alnum(label.front()) || !lower_alnum(label.back())) return false;
    if (!std::all_of(label.begin(), label.end(),
                     [&](char c) { return lower_alnum(c) || c == '-'; }))
      return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool parseInt64(std::string_view s, int64_t& out) {
  if (s.starts_with('+')) s.remove_prefix(1);  // strconv.ParseInt accepts a sign
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size();
}

// labels.Lexer: identifiers run until whitespace or one of the special symbols.
enum class Token {
  kEnd,
  kIdentifier,
  kIn,
  kNotIn,
  kDoesNotExist,
  kEquals,
  kDoubleEquals,
  kNotEquals,
  kGreaterThan,
  kLessThan,
  kOpenPar,
  kClosedPar,
  kComma,
  kError
};

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}
  // The next token, and its text for identifiers.
  Token next(std::string_view& literal) {
    while (pos_ < s_.size() && isWhitespace(s_[pos_])) ++pos_;
    if (pos_ == s_.size()) return Token::kEnd;
    const char c = s_[pos_];
    if (isSpecial(c)) {
      const bool eq_next = pos_ + 1 < s_.size() && s_[pos_ + 1] == '=';
      ++pos_;
      switch (c) {
        case '!':
          if (eq_next) {
            ++pos_;
            return Token::kNotEquals;
          }
          return Token::kDoesNotExist;
        case '=':
          if (eq_next) {
            ++pos_;
            return Token::kDoubleEquals;
          }
          return Token::kEquals;
        case '>':
          return Token::kGreaterThan;
        case '<':
          return Token::kLessThan;
        case '(':
          return Token::kOpenPar;
        case ')':
          return Token::kClosedPar;
        default:
          return Token::kComma;
      }
    }
    const size_t start = pos_;
    while (pos_ < s_.size() && !isWhitespace(s_[pos_]) && !isSpecial(s_[pos_])) ++pos_;
    literal = s_.substr(start, pos_ - start);
    if (literal == "in") return Token::kIn;
    if (literal == "notin") return Token::kNotIn;
    return Token::kIdentifier;
  }
  Token peek(std::string_view& literal) {
    const size_t saved = pos_;
    const Token t = next(literal);
    pos_ = saved;
    return t;
  }

 private:
  static bool isWhitespace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
  static bool isSpecial(char c) {
    return c == '=' || c == '!' || c == '(' || c == ')' || c == ',' || c == '>' || c == '<';
  }
  std::string_view s_;
  size_t pos_ = 0;
};

std::optional<LabelSelector::Requirement> parseRequirement(Lexer& lex) {
  using Op = LabelSelector::Op;
  LabelSelector::Requirement r;
  std::string_view lit;
  Token t = lex.next(lit);
  bool does_not_exist = false;
  if (t == Token::kDoesNotExist) {
    does_not_exist = true;
    t = lex.next(lit);
  }
  if (t != Token::kIdentifier || !isQualifiedName(lit)) return std::nullopt;
  r.key = std::string(lit);
  const Token after_key = lex.peek(lit);
  if (after_key == Token::kEnd || after_key == Token::kComma) {
    r.op = does_not_exist ? Op::kDoesNotExist : Op::kExists;
    return r;
  }
  if (does_not_exist) return std::nullopt;
  switch (lex.next(lit)) {
    case Token::kEquals:
    case Token::kDoubleEquals:
      r.op = Op::kEquals;
      break;
    case Token::kNotEquals:
      r.op = Op::kNotEquals;
      break;
    case Token::kGreaterThan:
      r.op = Op::kGreaterThan;
      break;
    case Token::kLessThan:
      r.op = Op::kLessThan;
      break;
    case Token::kIn:
      r.op = Op::kIn;
      break;
    case Token::kNotIn:
      r.op = Op::kNotIn;
      break;
    default:
      return std::nullopt;
  }
  if (r.op == Op::kIn || r.op == Op::kNotIn) {
    // "(" [value] {"," [value]} ")"; an empty value between commas is "".
    if (lex.next(lit) != Token::kOpenPar) return std::nullopt;
    if (lex.peek(lit) == Token::kClosedPar) {
      lex.next(lit);
      r.values.emplace_back();
    } else {
      bool expect_value = true;
      while (true) {
        const Token v = lex.next(lit);
        if (v == Token::kIdentifier && expect_value) {
          r.values.emplace_back(lit);
          expect_value = false;
        } else if (v == Token::kComma) {
          if (expect_value) r.values.emplace_back();
          expect_value = true;
        } else if (v == Token::kClosedPar) {
          if (expect_value) r.values.emplace_back();
          break;
        } else {
          return std::nullopt;
        }
      }
    }
  } else {
    const Token v = lex.peek(lit);
    if (v == Token::kEnd || v == Token::kComma) {
      r.values.emplace_back();
    } else if (v == Token::kIdentifier) {
      lex.next(lit);
      r.values.emplace_back(lit);
    } else {
      return std::nullopt;
    }
  }
  for (const auto& v : r.values) {
    if (!isLabelValue(v)) return std::nullopt;
  }
  if (r.op == Op::kGreaterThan || r.op == Op::kLessThan) {
    int64_t ignored;
    if (!parseInt64(r.values.front(), ignored)) return std::nullopt;
  }
  std::sort(r.values.begin(), r.values.end());
  r.values.erase(std::unique(r.values.begin(), r.values.end()), r.values.end());
  return r;
}

}  // namespace

bool isQualifiedName(std::string_view key) {
  const size_t slash = key.find('/');
  if (slash == std::string_view::npos) return isQualifiedNamePart(key);
  return isDnsSubdomain(key.substr(0, slash)) && isQualifiedNamePart(key.substr(slash + 1));
}

bool isLabelValue(std::string_view value) {
  return value.empty() || isQualifiedNamePart(value);
}

std::optional<LabelSelector> LabelSelector::parse(std::string_view text) {
  // kube-apiserver's lexer takes a NUL byte for the end of the selector.
  if (text.find('\0') != std::string_view::npos) return std::nullopt;
  LabelSelector selector;
  Lexer lex(text);
  std::string_view lit;
  if (lex.peek(lit) == Token::kEnd) return selector;
  while (true) {
    auto r = parseRequirement(lex);
    if (!r) return std::nullopt;
    selector.requirements_.push_back(std::move(*r));
    const Token t = lex.next(lit);
    if (t == Token::kEnd) break;
    if (t != Token::kComma) return std::nullopt;
    const Token after = lex.peek(lit);
    if (after != Token::kIdentifier && after != Token::kDoesNotExist) return std::nullopt;
  }
  return selector;
}

bool LabelSelector::matches(const Labels& labels) const {
  for (const auto& r : requirements_) {
    const std::optional<std::string_view> value = labels.find(r.key);
    const auto in_values = [&] {
      return std::binary_search(r.values.begin(), r.values.end(), *value);
    };
    bool ok = false;
    switch (r.op) {
      case Op::kExists:
        ok = value.has_value();
        break;
      case Op::kDoesNotExist:
        ok = !value;
        break;
      case Op::kEquals:
      case Op::kIn:
        ok = value && in_values();
        break;
      case Op::kNotEquals:
      case Op::kNotIn:
        ok = !value || !in_values();
        break;
      case Op::kGreaterThan:
      case Op::kLessThan: {
        int64_t have, want;
        if (!value || !parseInt64(*value, have) || !parseInt64(r.values.front(), want)) break;
        ok = r.op == Op::kGreaterThan ? have > want : have < want;
        break;
      }
    }
    if (!ok) return false;
  }
  return true;
}

std::optional<FieldSelector> FieldSelector::parse(std::string_view text) {
  FieldSelector selector;
  // Terms are separated by unescaped commas.
  std::vector<std::string_view> terms;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
    } else if (text[i] == ',') {
      terms.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  terms.push_back(text.substr(start));
  for (const std::string_view term : terms) {
    if (term.empty()) continue;
    // The first operator from the left, "!=" and "==" before "=".
    size_t at = std::string_view::npos, len = 0;
    for (size_t i = 0; i < term.size() && at == std::string_view::npos; ++i) {
      if (term.substr(i).starts_with("!=") || term.substr(i).starts_with("==")) {
        at = i, len = 2;
      } else if (term[i] == '=') {
        at = i, len = 1;
      }
    }
    if (at == std::string_view::npos) return std::nullopt;
    Requirement r;
    r.field = std::string(term.substr(0, at));
    r.equals = term[at] != '!';
    const std::string_view raw = term.substr(at + len);
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '=')
        return std::nullopt;  // an unescaped '=' in a value: kube-apiserver answers 400
      if (raw[i] != '\\') {
        r.value += raw[i];
      } else if (i + 1 < raw.size() &&
                 (raw[i + 1] == '\\' || raw[i + 1] == ',' || raw[i + 1] == '=')) {
        r.value += raw[++i];
      } else {
        return std::nullopt;  // an invalid escape: kube-apiserver answers 400
      }
    }
    selector.requirements_.push_back(std::move(r));
  }
  return selector;
}

std::optional<ObjectFilter> ObjectFilter::make(LabelSelector labels, const FieldSelector& fields,
                                               const SelectableFields& selectable,
                                               bool namespace_selectable) {
  ObjectFilter filter;
  filter.labels_ = std::move(labels);
  for (const auto& r : fields.requirements()) {
    int index = r.field == "metadata.name"                                ? kName
                : r.field == "metadata.namespace" && namespace_selectable ? kNamespace
                                                                          : -3;
    for (size_t i = 0; index == -3 && i < selectable.size(); ++i) {
      if (selectable[i].label == r.field) index = int(i);
    }
    if (index == -3) return std::nullopt;
    filter.fields_.push_back({r.field, index, r.equals, r.value});
  }
  return filter;
}

std::optional<std::string> ObjectFilter::requiredValue(std::string_view field) const {
  for (const auto& f : fields_) {
    if (f.equals && f.field == field) return f.value;
  }
  return std::nullopt;
}

bool ObjectFilter::matches(const Object& object) const {
  for (const auto& f : fields_) {
    const std::string_view have = f.index == kName        ? object.name
                                  : f.index == kNamespace ? object.namespace_
                                  : size_t(f.index) < object.fields.size()
                                      ? std::string_view(object.fields[size_t(f.index)])
                                      : std::string_view();
    if ((have == f.value) != f.equals) return false;
  }
  return labels_.matches(object.labels);
}

}  // namespace kcp::cache
