package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// A controller-runtime operator shaped like the Grove operator in its scale
// test: a PodSet custom resource asks for N pods; every reconcile lists the
// set's pods by label straight from the server (a consistent, label-selected
// LIST, not the manager's cache) and creates what is missing. Built-in types
// go through controller-runtime's defaults (protobuf), the custom resource in JSON.

var podSetGVK = schema.GroupVersionKind{Group: "kcp.example.com", Version: "v1", Kind: "PodSet"}
var podSetGVR = schema.GroupVersionResource{Group: "kcp.example.com", Version: "v1", Resource: "podsets"}

const podSetLabel = "kcp.example.com/podset"

type podSetReconciler struct {
	client client.Client // the manager's: cached reads, direct writes
	reader client.Reader // the server's: each reconcile's label-selected LIST
}

func (r *podSetReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	set := &unstructured.Unstructured{}
	set.SetGroupVersionKind(podSetGVK)
	if err := r.client.Get(ctx, req.NamespacedName, set); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if set.GetDeletionTimestamp() != nil {
		return ctrl.Result{}, nil
	}
	replicas, _, _ := unstructured.NestedInt64(set.Object, "spec", "replicas")
	var pods corev1.PodList
	if err := r.reader.List(ctx, &pods, client.InNamespace(req.Namespace),
		client.MatchingLabels{podSetLabel: req.Name}); err != nil {
		return ctrl.Result{}, err
	}
	have := map[string]bool{}
	for _, p := range pods.Items {
		have[p.Name] = true
	}
	controllerRef := true
	for i := int64(0); i < replicas; i++ {
		name := fmt.Sprintf("%s-%d", req.Name, i)
		if have[name] {
			continue
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: name, Namespace: req.Namespace, Labels: map[string]string{podSetLabel: req.Name},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: podSetGVK.GroupVersion().String(),
					Kind: podSetGVK.Kind, Name: set.GetName(), UID: set.GetUID(),
					Controller: &controllerRef, BlockOwnerDeletion: &controllerRef}},
			},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "busybox"}}},
		}
		if err := r.client.Create(ctx, pod); err != nil && !apierrors.IsAlreadyExists(err) {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, nil
}

// cmdOperator runs the operator until SIGTERM.
func cmdOperator(args []string) error {
	fs := flag.NewFlagSet("operator", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig the operator talks through")
	workers := fs.Int("workers", 10, "concurrent reconciles")
	_ = fs.Parse(args)
	ctrl.SetLogger(zap.New(zap.UseDevMode(false)))
	cfg, err := restConfig(*kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 100, 200
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := ensurePodSetCRD(context.Background(), dyn); err != nil { // the manager maps kinds at start
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		return err
	}
	set := &unstructured.Unstructured{}
	set.SetGroupVersionKind(podSetGVK)
	err = ctrl.NewControllerManagedBy(mgr).For(set).Owns(&corev1.Pod{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: *workers}).
		Complete(&podSetReconciler{client: mgr.GetClient(), reader: mgr.GetAPIReader()})
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	return mgr.Start(ctx)
}

// cmdPodSets is the scale test's driver: SETS PodSets of REPLICAS pods are
// created, the operator makes their pods and they run; then the sets are
// deleted and the garbage collector removes the pods. It prints each phase's
// wall-clock as one JSON line.
func cmdPodSets(args []string) error {
	fs := flag.NewFlagSet("podsets", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "admin kubeconfig (kube-apiserver directly: the driver is not measured)")
	namespace := fs.String("namespace", "podsets", "namespace of the sets")
	sets := fs.Int("sets", 500, "PodSets to create")
	replicas := fs.Int("replicas", 2, "pods per PodSet")
	timeout := fs.Duration("timeout", 15*time.Minute, "give up on a phase after this long")
	_ = fs.Parse(args)
	cfg, err := restConfig(*kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 200, 400
	ctx := context.Background()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	cs, err := adminClient(*kubeconfig)
	if err != nil {
		return err
	}
	if err := ensurePodSetCRD(ctx, dyn); err != nil {
		return err
	}
	if err := ensureNamespace(ctx, cs, *namespace); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	// Pods of a new namespace wait for its default service account (the ServiceAccount admission plugin).
	if _, err := waitForSeconds(*timeout, func() (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(*namespace).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, client.IgnoreNotFound(err)
	}); err != nil {
		return fmt.Errorf("default service account: %w", err)
	}
	want := *sets * *replicas
	selector := podSetLabel // pods of any set
	pods := func(running bool) (int, error) {
		// From kube-apiserver's watch cache: the driver's polling should cost it little.
		opts := metav1.ListOptions{LabelSelector: selector, ResourceVersion: "0"}
		if running {
			opts.FieldSelector = "status.phase=Running"
		}
		l, err := cs.CoreV1().Pods(*namespace).List(ctx, opts)
		if err != nil {
			return 0, err
		}
		return len(l.Items), nil
	}
	waitFor := func(what string, done func() (bool, error)) (float64, error) {
		s, err := waitForSeconds(*timeout, done)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		return s, nil
	}
	t0 := time.Now()
	res := dyn.Resource(podSetGVR).Namespace(*namespace)
	for i := 0; i < *sets; i++ {
		set := &unstructured.Unstructured{Object: map[string]interface{}{
			"apiVersion": podSetGVK.GroupVersion().String(), "kind": podSetGVK.Kind,
			"metadata": map[string]interface{}{"name": "set-" + strconv.Itoa(i)},
			"spec":     map[string]interface{}{"replicas": int64(*replicas)},
		}}
		if _, err := res.Create(ctx, set, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	created := time.Since(t0).Seconds()
	running, err := waitFor("pods running", func() (bool, error) { n, err := pods(true); return n >= want, err })
	if err != nil {
		return err
	}
	background := metav1.DeletePropagationBackground
	if err := res.DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: &background}, metav1.ListOptions{}); err != nil {
		return err
	}
	gone, err := waitFor("pods gone", func() (bool, error) { n, err := pods(false); return n == 0, err })
	if err != nil {
		return err
	}
	out, _ := json.Marshal(map[string]interface{}{"sets": *sets, "pods": want,
		"create_seconds": created, "running_seconds": running, "delete_seconds": gone,
		"total_seconds": time.Since(t0).Seconds()})
	fmt.Println(string(out))
	return nil
}

func ensurePodSetCRD(ctx context.Context, dyn dynamic.Interface) error {
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	crd := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]interface{}{"name": "podsets.kcp.example.com"},
		"spec": map[string]interface{}{
			"group": "kcp.example.com", "scope": "Namespaced",
			"names": map[string]interface{}{"plural": "podsets", "singular": "podset", "kind": "PodSet", "listKind": "PodSetList"},
			"versions": []interface{}{map[string]interface{}{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]interface{}{"openAPIV3Schema": map[string]interface{}{
					"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
			}},
		},
	}}
	if _, err := dyn.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	for i := 0; i < 300; i++ {
		if _, err := dyn.Resource(podSetGVR).List(ctx, metav1.ListOptions{Limit: 1}); err == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("CRD podsets.kcp.example.com not served")
}

// waitForSeconds polls DONE every 500 ms until it holds, and says how long that took.
func waitForSeconds(timeout time.Duration, done func() (bool, error)) (float64, error) {
	t0 := time.Now()
	for time.Since(t0) < timeout {
		ok, err := done()
		if err != nil {
			return 0, err
		}
		if ok {
			return time.Since(t0).Seconds(), nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return 0, fmt.Errorf("not done after %s", timeout)
}
