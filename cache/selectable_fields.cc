#include "cache/selectable_fields.h"

#include <iterator>
#include <map>
#include <string>
#include <utility>

namespace kcp::cache {
namespace {

using Type = SelectableField::Type;

SelectableField str(std::string label, std::vector<std::string> path,
                    std::vector<uint32_t> protobuf_path) {
  return {std::move(label), std::move(path), {}, Type::kString, std::move(protobuf_path)};
}
SelectableField typed(std::string label, std::vector<std::string> path, Type type,
                      std::vector<uint32_t> protobuf_path) {
  return {std::move(label), std::move(path), {}, type, std::move(protobuf_path)};
}

// An object reference's fields (core Event's involvedObject, events.k8s.io's
// regarding): kind 1, namespace 2, name 3, uid 4, apiVersion 5,
// resourceVersion 6, fieldPath 7.
std::vector<SelectableField> reference(const std::string& label, uint32_t number) {
  const std::pair<const char*, uint32_t> members[] = {
      {"kind", 1},       {"namespace", 2},       {"name", 3},     {"uid", 4},
      {"apiVersion", 5}, {"resourceVersion", 6}, {"fieldPath", 7}};
  std::vector<SelectableField> out;
  for (const auto& [member, field] : members) {
    out.push_back(str(label + "." + member, {label, member}, {number, field}));
  }
  return out;
}

SelectableFields concat(std::vector<SelectableField> a, std::vector<SelectableField> b) {
  a.insert(a.end(), std::make_move_iterator(b.begin()), std::make_move_iterator(b.end()));
  return a;
}

// kube-apiserver 1.37: pkg/apis/*/v1/conversion.go (accepted labels) and
// pkg/registry/*/strategy.go GetAttrs (values). Paths are in the v1 JSON the
// cache holds and in k8s.io/api's generated.proto (spec 2, status 3 in most kinds).
const std::map<std::pair<std::string_view, std::string_view>, ResourceFields>& builtIn() {
  static const auto* table =
      new std::map<std::pair<std::string_view, std::string_view>, ResourceFields>{
          {{"", "pods"},
           {true,
            {str("spec.nodeName", {"spec", "nodeName"}, {2, 10}),
             str("spec.host", {"spec", "nodeName"},
                 {2, 10}),  // an alias kube-apiserver rewrites to spec.nodeName
             str("spec.restartPolicy", {"spec", "restartPolicy"}, {2, 3}),
             str("spec.schedulerName", {"spec", "schedulerName"}, {2, 19}),
             str("spec.serviceAccountName", {"spec", "serviceAccountName"}, {2, 8}),
             typed("spec.hostNetwork", {"spec", "hostNetwork"}, Type::kBool, {2, 11}),
             str("status.phase", {"status", "phase"}, {3, 1}),
             str("status.podIP", {"status", "podIPs", "0", "ip"},
                 {3, 12, 1}),               // the first of podIPs, not podIP
             str("status.podIPs", {}, {}),  // accepted, never set: always ""
             str("status.nominatedNodeName", {"status", "nominatedNodeName"}, {3, 11})}}},
          {{"", "nodes"},
           {false, {typed("spec.unschedulable", {"spec", "unschedulable"}, Type::kBool, {2, 4})}}},
          {{"", "replicationcontrollers"},
           {true, {typed("status.replicas", {"status", "replicas"}, Type::kInteger, {3, 1})}}},
          {{"", "events"},
           {true, concat(reference("involvedObject", 2),
                         {str("reason", {"reason"}, {3}),
                          str("reportingComponent", {"reportingComponent"}, {14}),
                          {"source",
                           {"source", "component"},
                           {"reportingComponent"},
                           Type::kString,
                           {5, 1},
                           {14}},
                          str("type", {"type"}, {9})})}},
          {{"events.k8s.io", "events"},
           {true, concat(reference("regarding", 8),
                         {str("reason", {"reason"}, {7}),
                          str("reportingController", {"reportingController"}, {4}),
                          str("type", {"type"}, {11})})}},
          {{"", "namespaces"}, {false, {str("status.phase", {"status", "phase"}, {3, 1})}}},
          {{"", "secrets"}, {true, {str("type", {"type"}, {3})}}},
          {{"", "services"},
           {true,
            {str("spec.clusterIP", {"spec", "clusterIP"}, {2, 3}),
             str("spec.type", {"spec", "type"}, {2, 4})}}},
          {{"batch", "jobs"},
           {true, {typed("status.successful", {"status", "succeeded"}, Type::kInteger, {3, 5})}}},
          {{"certificates.k8s.io", "certificatesigningrequests"},
           {false, {str("spec.signerName", {"spec", "signerName"}, {2, 7})}}},
          {{"certificates.k8s.io", "clustertrustbundles"},
           {false, {str("spec.signerName", {"spec", "signerName"}, {2, 1})}}},
          {{"certificates.k8s.io", "podcertificaterequests"},
           {false,
            {str("spec.signerName", {"spec", "signerName"}, {2, 1}),
             str("spec.podName", {"spec", "podName"}, {2, 2}),
             str("spec.nodeName", {"spec", "nodeName"}, {2, 6})}}},
          {{"resource.k8s.io", "resourceslices"},
           {false,
            {str("spec.nodeName", {"spec", "nodeName"}, {2, 3}),
             str("spec.driver", {"spec", "driver"}, {2, 1}),
             str("spec.pool.name", {"spec", "pool", "name"}, {2, 2, 1})}}},
      };
  return *table;
}

}  // namespace

ResourceFields selectableFields(std::string_view group, std::string_view resource,
                                bool namespaced) {
  const auto it = builtIn().find({group, resource});
  return it != builtIn().end() ? it->second : ResourceFields{namespaced, {}};
}

}  // namespace kcp::cache
