#include "cache/selectable_fields.h"

namespace kcp::cache {

const SelectableFields& selectableFields(std::string_view, std::string_view) {
  static const SelectableFields kNone;
  return kNone;
}

}  // namespace kcp::cache
