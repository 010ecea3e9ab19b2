package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// resourceKind describes one resource kcluster can load, churn and watch.
// Objects are built as unstructured maps so that one code path serves all.
type resourceKind struct {
	gvr        schema.GroupVersionResource
	apiVersion string
	kind       string
	// defaultSize is the approximate JSON size of a generated object.
	defaultSize int
	// build returns a new object of about size bytes, deterministic in rnd.
	build func(ns, name string, size int, rnd *rand.Rand) map[string]interface{}
	// mutate changes an existing object in place, as an update would.
	mutate func(obj map[string]interface{}, rnd *rand.Rand)
}

var resourceKinds = map[string]*resourceKind{
	"configmaps": {
		gvr:        schema.GroupVersionResource{Version: "v1", Resource: "configmaps"},
		apiVersion: "v1", kind: "ConfigMap", defaultSize: 1024,
		build: func(ns, name string, size int, rnd *rand.Rand) map[string]interface{} {
			return map[string]interface{}{
				"metadata": objectMeta(ns, name, rnd),
				"data":     map[string]interface{}{"config.yaml": configText(size, rnd), "generation": "0"},
			}
		},
		mutate: func(obj map[string]interface{}, rnd *rand.Rand) {
			obj["data"].(map[string]interface{})["generation"] = fmt.Sprint(rnd.Int63())
		},
	},
	"secrets": {
		gvr:        schema.GroupVersionResource{Version: "v1", Resource: "secrets"},
		apiVersion: "v1", kind: "Secret", defaultSize: 1024,
		build: func(ns, name string, size int, rnd *rand.Rand) map[string]interface{} {
			blob := make([]byte, size*3/4)
			rnd.Read(blob)
			return map[string]interface{}{
				"metadata": objectMeta(ns, name, rnd),
				"type":     "Opaque",
				"data":     map[string]interface{}{"token": base64.StdEncoding.EncodeToString(blob)},
			}
		},
		mutate: func(obj map[string]interface{}, rnd *rand.Rand) {
			obj["data"].(map[string]interface{})["generation"] = base64.StdEncoding.EncodeToString([]byte(fmt.Sprint(rnd.Int63())))
		},
	},
	"pods": {
		gvr:        schema.GroupVersionResource{Version: "v1", Resource: "pods"},
		apiVersion: "v1", kind: "Pod", defaultSize: 3000,
		build: buildPod,
		mutate: func(obj map[string]interface{}, rnd *rand.Rand) {
			md := obj["metadata"].(map[string]interface{})
			ann, _ := md["annotations"].(map[string]interface{})
			if ann == nil {
				ann = map[string]interface{}{}
				md["annotations"] = ann
			}
			ann["kcluster.example.com/generation"] = fmt.Sprint(rnd.Int63())
		},
	},
	"widgets": {
		gvr:        schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"},
		apiVersion: "example.com/v1", kind: "Widget", defaultSize: 4096,
		build: func(ns, name string, size int, rnd *rand.Rand) map[string]interface{} {
			parts := []interface{}{}
			for used := 300; used < size; used += 120 {
				parts = append(parts, map[string]interface{}{
					"name": fmt.Sprintf("part-%d", len(parts)), "replicas": int64(rnd.Intn(10)),
					"selector": fmt.Sprintf("tier=%s,zone=%s", pick(rnd, words), pick(rnd, zones)),
					"note":     sentence(rnd, 6),
				})
			}
			return map[string]interface{}{
				"metadata": objectMeta(ns, name, rnd),
				"spec":     map[string]interface{}{"generation": int64(0), "parts": parts},
			}
		},
		mutate: func(obj map[string]interface{}, rnd *rand.Rand) {
			obj["spec"].(map[string]interface{})["generation"] = rnd.Int63()
		},
	},
}

func lookupKind(resource string) (*resourceKind, error) {
	rk, ok := resourceKinds[resource]
	if !ok {
		return nil, fmt.Errorf("unknown resource %q (configmaps, secrets, pods or widgets)", resource)
	}
	return rk, nil
}

func (rk *resourceKind) object(ns, name string, size int, rnd *rand.Rand) *unstructured.Unstructured {
	obj := rk.build(ns, name, size, rnd)
	obj["apiVersion"], obj["kind"] = rk.apiVersion, rk.kind
	return &unstructured.Unstructured{Object: obj}
}

var (
	words = []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
		"juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango"}
	zones = []string{"us-east-1a", "us-east-1b", "eu-west-1a", "eu-west-1c"}
)

func pick(rnd *rand.Rand, from []string) string { return from[rnd.Intn(len(from))] }

func sentence(rnd *rand.Rand, n int) string {
	w := make([]string, n)
	for i := range w {
		w[i] = pick(rnd, words)
	}
	return strings.Join(w, " ")
}

// configText is YAML-like configuration text: repetitive keys, varied values,
// so that it compresses as real configuration does.
func configText(size int, rnd *rand.Rand) string {
	var b strings.Builder
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "%s_%d:\n  enabled: %t\n  endpoint: https://%s.%s.svc:%d/v%d\n  note: %s\n",
			pick(rnd, words), i, rnd.Intn(2) == 0, pick(rnd, words), pick(rnd, words),
			8000+rnd.Intn(1000), 1+rnd.Intn(3), sentence(rnd, 4))
	}
	return b.String()[:size]
}

func objectMeta(ns, name string, rnd *rand.Rand) map[string]interface{} {
	return map[string]interface{}{
		"name": name, "namespace": ns,
		"labels": map[string]interface{}{
			"app":  pick(rnd, words),
			"tier": pick(rnd, []string{"frontend", "backend", "cache"}),
		},
	}
}

// buildPod makes a realistic pod: two containers with env, resources, probes
// and mounts, padded with an annotation up to size.
func buildPod(ns, name string, size int, rnd *rand.Rand) map[string]interface{} {
	app := pick(rnd, words)
	container := func(cname string) map[string]interface{} {
		env := []interface{}{}
		for i := 0; i < 6; i++ {
			env = append(env, map[string]interface{}{
				"name": fmt.Sprintf("%s_SETTING_%d", strings.ToUpper(pick(rnd, words)), i), "value": sentence(rnd, 2)})
		}
		return map[string]interface{}{
			"name":  cname,
			"image": fmt.Sprintf("registry.example.com/%s/%s:v1.%d.%d", app, cname, rnd.Intn(30), rnd.Intn(10)),
			"args":  []interface{}{"--port=8080", "--log-level=info", "--config=/etc/" + app + "/config.yaml"},
			"ports": []interface{}{map[string]interface{}{"name": "http", "containerPort": int64(8080), "protocol": "TCP"}},
			"env":   env,
			"resources": map[string]interface{}{
				"requests": map[string]interface{}{"cpu": fmt.Sprintf("%dm", 50+rnd.Intn(500)), "memory": fmt.Sprintf("%dMi", 64+rnd.Intn(512))},
				"limits":   map[string]interface{}{"memory": "1Gi"},
			},
			"readinessProbe": map[string]interface{}{
				"httpGet": map[string]interface{}{"path": "/readyz", "port": int64(8080)}, "periodSeconds": int64(10)},
			"volumeMounts": []interface{}{map[string]interface{}{"name": "config", "mountPath": "/etc/" + app}},
		}
	}
	pod := map[string]interface{}{
		"metadata": map[string]interface{}{
			"name": name, "namespace": ns,
			"labels": map[string]interface{}{"app": app, "pod-template-hash": fmt.Sprintf("%x", rnd.Int31()),
				"group": fmt.Sprintf("g-%d", rnd.Intn(500))},
			"annotations": map[string]interface{}{"kcluster.example.com/owner": sentence(rnd, 3)},
		},
		"spec": map[string]interface{}{
			"containers":                    []interface{}{container("main"), container("sidecar")},
			"volumes":                       []interface{}{map[string]interface{}{"name": "config", "configMap": map[string]interface{}{"name": app + "-config"}}},
			"terminationGracePeriodSeconds": int64(30),
			"restartPolicy":                 pick(rnd, []string{"Always", "Always", "OnFailure"}),
			"nodeSelector":                  map[string]interface{}{"topology.kubernetes.io/zone": pick(rnd, zones)},
		},
	}
	// Bound to one of a few nodes, or not yet: gives field selectors on
	// spec.nodeName (as kubelets send) something to select.
	if node := rnd.Intn(5); node > 0 {
		pod["spec"].(map[string]interface{})["nodeName"] = fmt.Sprintf("node-%d", node)
	}
	// Pad to the requested size: the JSON above is roughly 2 KB.
	if pad := size - 2200; pad > 0 {
		pod["metadata"].(map[string]interface{})["annotations"].(map[string]interface{})["kcluster.example.com/notes"] = configText(pad, rnd)
	}
	return pod
}

// ensureWidgetCRD installs the widgets.example.com CustomResourceDefinition
// (a free-form spec) and waits until it is established.
func ensureWidgetCRD(ctx context.Context, dyn dynamic.Interface) error {
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	crd := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]interface{}{"name": "widgets.example.com"},
		"spec": map[string]interface{}{
			"group": "example.com", "scope": "Namespaced",
			"names": map[string]interface{}{"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
			"versions": []interface{}{map[string]interface{}{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]interface{}{"openAPIV3Schema": map[string]interface{}{
					"type": "object",
					"properties": map[string]interface{}{
						"spec": map[string]interface{}{"type": "object", "x-kubernetes-preserve-unknown-fields": true},
					},
				}},
			}},
		},
	}}
	_, err := dyn.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	for {
		got, err := dyn.Resource(crdGVR).Get(ctx, "widgets.example.com", metav1.GetOptions{})
		if err == nil {
			conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			for _, c := range conds {
				m := c.(map[string]interface{})
				if m["type"] == "Established" && m["status"] == "True" {
					// Discovery and the REST handler follow the condition shortly.
					_, err := dyn.Resource(resourceKinds["widgets"].gvr).List(ctx, metav1.ListOptions{Limit: 1})
					if err == nil {
						return nil
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CRD widgets.example.com not established: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
