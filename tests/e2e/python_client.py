#!/usr/bin/python3
"""The Python kubernetes client (Debian's python3-kubernetes) lists through
the proxy's cleartext listener and directly: the same objects.

  python_client.py PROXY_PORT ADMIN_KUBECONFIG NAMESPACE"""
import sys

from kubernetes import client, config


def main():
    port, kubeconfig, namespace = sys.argv[1], sys.argv[2], sys.argv[3]
    direct = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
    proxy_config = client.Configuration()
    proxy_config.host = f"http://127.0.0.1:{port}"
    via_proxy = client.CoreV1Api(client.ApiClient(proxy_config))
    # resourceVersion 0: both answer from their caches, which have caught up (no writes meanwhile).
    a = via_proxy.list_namespaced_config_map(namespace, resource_version="0")
    b = direct.list_namespaced_config_map(namespace, resource_version="0")
    items = lambda lst: [(o.metadata.name, o.metadata.resource_version, o.data) for o in lst.items]
    print(f"{len(a.items)} configmaps through the proxy, {len(b.items)} directly")
    pods_a = via_proxy.list_pod_for_all_namespaces(resource_version="0", label_selector="app")
    pods_b = direct.list_pod_for_all_namespaces(resource_version="0", label_selector="app")
    print(f"{len(pods_a.items)} labelled pods through the proxy, {len(pods_b.items)} directly")
    same = items(a) == items(b) and len(a.items) > 0 and \
        [(p.metadata.namespace, p.metadata.name, p.metadata.resource_version) for p in pods_a.items] == \
        [(p.metadata.namespace, p.metadata.name, p.metadata.resource_version) for p in pods_b.items]
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
