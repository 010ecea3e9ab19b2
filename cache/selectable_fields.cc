#include "cache/selectable_fields.h"

#include <map>
#include <string>
#include <utility>

namespace kcp::cache {
namespace {

using Type = SelectableField::Type;

SelectableField str(std::string label, std::vector<std::string> path) { return {std::move(label), std::move(path)}; }

// kube-apiserver 1.37: pkg/apis/*/v1/conversion.go (accepted labels) and
// pkg/registry/*/strategy.go GetAttrs (values). Paths are in the v1 JSON the
// cache holds.
const std::map<std::pair<std::string_view, std::string_view>, ResourceFields>& builtIn() {
  static const auto* table = new std::map<std::pair<std::string_view, std::string_view>, ResourceFields>{
      {{"", "pods"},
       {true,
        {str("spec.nodeName", {"spec", "nodeName"}),
         str("spec.host", {"spec", "nodeName"}),  // an alias kube-apiserver rewrites to spec.nodeName
         str("spec.restartPolicy", {"spec", "restartPolicy"}),
         str("spec.schedulerName", {"spec", "schedulerName"}),
         str("spec.serviceAccountName", {"spec", "serviceAccountName"}),
         {"spec.hostNetwork", {"spec", "hostNetwork"}, {}, Type::kBool},
         str("status.phase", {"status", "phase"}),
         str("status.podIP", {"status", "podIPs", "0", "ip"}),  // the first of podIPs, not podIP
         str("status.podIPs", {}),                              // accepted, never set: always ""
         str("status.nominatedNodeName", {"status", "nominatedNodeName"})}}},
      {{"", "nodes"}, {false, {{"spec.unschedulable", {"spec", "unschedulable"}, {}, Type::kBool}}}},
      {{"", "replicationcontrollers"}, {true, {{"status.replicas", {"status", "replicas"}, {}, Type::kInteger}}}},
      {{"", "events"},
       {true,
        {str("involvedObject.kind", {"involvedObject", "kind"}),
         str("involvedObject.namespace", {"involvedObject", "namespace"}),
         str("involvedObject.name", {"involvedObject", "name"}),
         str("involvedObject.uid", {"involvedObject", "uid"}),
         str("involvedObject.apiVersion", {"involvedObject", "apiVersion"}),
         str("involvedObject.resourceVersion", {"involvedObject", "resourceVersion"}),
         str("involvedObject.fieldPath", {"involvedObject", "fieldPath"}),
         str("reason", {"reason"}),
         str("reportingComponent", {"reportingComponent"}),
         {"source", {"source", "component"}, {"reportingComponent"}},
         str("type", {"type"})}}},
      {{"events.k8s.io", "events"},
       {true,
        {str("regarding.kind", {"regarding", "kind"}),
         str("regarding.namespace", {"regarding", "namespace"}),
         str("regarding.name", {"regarding", "name"}),
         str("regarding.uid", {"regarding", "uid"}),
         str("regarding.apiVersion", {"regarding", "apiVersion"}),
         str("regarding.resourceVersion", {"regarding", "resourceVersion"}),
         str("regarding.fieldPath", {"regarding", "fieldPath"}),
         str("reason", {"reason"}),
         str("reportingController", {"reportingController"}),
         str("type", {"type"})}}},
      {{"", "namespaces"}, {false, {str("status.phase", {"status", "phase"})}}},
      {{"", "secrets"}, {true, {str("type", {"type"})}}},
      {{"", "services"}, {true, {str("spec.clusterIP", {"spec", "clusterIP"}), str("spec.type", {"spec", "type"})}}},
      {{"batch", "jobs"}, {true, {{"status.successful", {"status", "succeeded"}, {}, Type::kInteger}}}},
      {{"certificates.k8s.io", "certificatesigningrequests"}, {false, {str("spec.signerName", {"spec", "signerName"})}}},
      {{"certificates.k8s.io", "clustertrustbundles"}, {false, {str("spec.signerName", {"spec", "signerName"})}}},
      {{"certificates.k8s.io", "podcertificaterequests"},
       {false,
        {str("spec.signerName", {"spec", "signerName"}), str("spec.podName", {"spec", "podName"}),
         str("spec.nodeName", {"spec", "nodeName"})}}},
      {{"resource.k8s.io", "resourceslices"},
       {false,
        {str("spec.nodeName", {"spec", "nodeName"}), str("spec.driver", {"spec", "driver"}),
         str("spec.pool.name", {"spec", "pool", "name"})}}},
  };
  return *table;
}

}  // namespace

ResourceFields selectableFields(std::string_view group, std::string_view resource, bool namespaced) {
  const auto it = builtIn().find({group, resource});
  return it != builtIn().end() ? it->second : ResourceFields{namespaced, {}};
}

}  // namespace kcp::cache
