// A LIST's query on arbitrary bytes: the query parameters, label and field
// selectors, the continue token, and planning the read from a small cache.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cache/selectable_fields.h"
#include "cache/selector.h"
#include "encoder/continue_token.h"
#include "proxy/handlers/cached_list.h"
#include "proxy/request/list_options.h"

namespace {

struct Cache {
  kcp::cache::Store store;
  kcp::proxy::CachedResource resource;
  Cache() {
    resource.store = &store;
    resource.resource = "pods";
    resource.fields = kcp::cache::selectableFields("", "pods", true);
    std::vector<kcp::cache::ObjectPtr> objects;
    for (int i = 0; i < 20; ++i) {
      objects.push_back(kcp::cache::parseJsonObject(
          R"({"metadata":{"name":"p)" + std::to_string(i) + R"(","namespace":"ns)" +
              std::to_string(i % 3) + R"(","resourceVersion":"5","labels":{"app":"a)" +
              std::to_string(i % 4) + R"("}},"spec":{"nodeName":"n)" + std::to_string(i % 2) +
              R"("}})",
          nullptr, resource.fields.fields));
    }
    store.replace(objects, 5);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Cache cache;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  kcp::cache::LabelSelector::parse(in);
  kcp::cache::FieldSelector::parse(in);
  kcp::encoder::decodeContinueToken(in);
  const auto options = kcp::proxy::parseListOptions(in);
  if (!options) return 0;
  for (const char* ns : {"", "ns1"}) {
    kcp::proxy::RequestInfo info;
    info.namespace_ = ns;
    if (auto plan = kcp::proxy::planList(cache.resource, info, *options)) {
      std::vector<kcp::cache::ObjectPtr> page;
      if (plan->limit > 0) kcp::proxy::selectPage(*plan, page);
    }
  }
  return 0;
}
