package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"sort"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// startInformer starts one informer on the resource through cfg (its own
// client, so its own connection pool) and returns its indexer and HasSynced.
func startInformer(cfg *rest.Config, rk *resourceKind, metadataOnly bool, stop <-chan struct{}) (cache.Indexer, cache.InformerSynced, error) {
	if metadataOnly {
		// As the garbage collector and the quota controller watch every resource
		// without a typed informer: PartialObjectMetadata, protobuf first.
		mc, err := metadata.NewForConfig(cfg)
		if err != nil {
			return nil, nil, err
		}
		f := metadatainformer.NewSharedInformerFactory(mc, 0)
		inf := f.ForResource(rk.gvr).Informer()
		f.Start(stop)
		return inf.GetIndexer(), inf.HasSynced, nil
	}
	if rk.gvr.Group != "" {
		dyn, err := dynamic.NewForConfig(cfg)
		if err != nil {
			return nil, nil, err
		}
		f := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0)
		inf := f.ForResource(rk.gvr).Informer()
		f.Start(stop)
		return inf.GetIndexer(), inf.HasSynced, nil
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	f := informers.NewSharedInformerFactory(cs, 0)
	gi, err := f.ForResource(rk.gvr)
	if err != nil {
		return nil, nil, err
	}
	inf := gi.Informer()
	f.Start(stop)
	return inf.GetIndexer(), inf.HasSynced, nil
}

func cmdInformer(args []string) error {
	fs := flag.NewFlagSet("informer", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig the informers connect through (e.g. the proxy's)")
	resource := fs.String("resource", "configmaps", "configmaps, secrets, pods or widgets")
	protobuf := fs.Bool("protobuf", false, "ask for protobuf (built-in resources only)")
	metadataOnly := fs.Bool("metadata", false, "a metadata-only informer (client-go's metadata client: PartialObjectMetadata, protobuf first)")
	count := fs.Int("count", 1, "number of independent informers to start at once")
	verifyAgainst := fs.String("verify-against", "", "admin kubeconfig of the real apiserver: check every informer's store equals a direct LIST")
	watchList := fs.String("watch-list", "", "true|false: set client-go's WatchListClient feature (default: client-go's default)")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up syncing (and verifying) after this long")
	hold := fs.Duration("hold", 0, "after syncing, keep the informers running this long before verifying (faults may happen meanwhile)")
	_ = fs.Parse(args)

	rk, err := lookupKind(*resource)
	if err != nil {
		return err
	}
	if *protobuf && rk.gvr.Group != "" {
		return errors.New("--protobuf: custom resources are served as JSON only")
	}
	if *watchList != "" {
		// client-go reads its feature gates from the environment on first use.
		os.Setenv("KUBE_FEATURE_WatchListClient", *watchList)
	}
	cfg, err := restConfig(*kubeconfig)
	if err != nil {
		return err
	}
	if *protobuf {
		cfg.ContentType = runtime.ContentTypeProtobuf
		cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	}
	stop := make(chan struct{})
	defer close(stop)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	start := time.Now()
	indexers := make([]cache.Indexer, *count)
	synced := make([]cache.InformerSynced, *count)
	for i := range indexers {
		if indexers[i], synced[i], err = startInformer(rest.CopyConfig(cfg), rk, *metadataOnly, stop); err != nil {
			return err
		}
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("%d informers did not sync within %s", *count, *timeout)
	}
	syncSeconds := time.Since(start).Seconds()
	if *hold > 0 {
		fmt.Fprintf(os.Stderr, "kcluster informer: synced in %.1f s; holding %s\n", syncSeconds, *hold)
		time.Sleep(*hold)
	}

	result := map[string]interface{}{
		"resource": *resource, "informers": *count, "protobuf": *protobuf, "metadata": *metadataOnly,
		"objects": len(indexers[0].List()), "sync_seconds": syncSeconds,
	}
	if *verifyAgainst != "" {
		checked, err := verifyStores(ctx, *verifyAgainst, rk, *metadataOnly, indexers)
		if err != nil {
			return err
		}
		result["verified_objects"] = checked
	}
	out, _ := json.Marshal(result)
	fmt.Println(string(out))
	return nil
}

// verifyStores compares every informer's store with a direct LIST from the
// admin kubeconfig: same keys, same resourceVersions, equal objects. Events
// may still be in flight, so it retries until equal or the context ends.
func verifyStores(ctx context.Context, adminKubeconfig string, rk *resourceKind, metadataOnly bool, indexers []cache.Indexer) (int, error) {
	cfg, err := restConfig(adminKubeconfig)
	if err != nil {
		return 0, err
	}
	for {
		// The apiserver may be restarting (fault tests): retry until the deadline.
		truth, err := directList(ctx, cfg, rk, metadataOnly)
		var diff string
		if err != nil {
			diff = "direct LIST failed: " + err.Error()
		}
		for i, idx := range indexers {
			if err != nil {
				break
			}
			if diff = compareStore(truth, idx.List()); diff != "" {
				diff = fmt.Sprintf("informer %d: %s", i, diff)
				break
			}
		}
		if diff == "" {
			return len(truth), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("informer store differs from a direct LIST: %s", diff)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// directList returns ground truth keyed by namespace/name, as typed objects
// for built-in resources and unstructured ones for custom resources, so it
// compares like with like against the informers' stores.
func directList(ctx context.Context, cfg *rest.Config, rk *resourceKind, metadataOnly bool) (map[string]runtime.Object, error) {
	out := map[string]runtime.Object{}
	var items []runtime.Object
	if metadataOnly {
		mc, err := metadata.NewForConfig(cfg)
		if err != nil {
			return nil, err
		}
		list, err := mc.Resource(rk.gvr).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		for i := range list.Items {
			items = append(items, &list.Items[i])
		}
	} else if rk.gvr.Group != "" {
		dyn, err := dynamic.NewForConfig(cfg)
		if err != nil {
			return nil, err
		}
		list, err := dyn.Resource(rk.gvr).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		for i := range list.Items {
			items = append(items, &list.Items[i])
		}
	} else {
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, err
		}
		var list runtime.Object
		switch rk.gvr.Resource {
		case "configmaps":
			list, err = cs.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
		case "secrets":
			list, err = cs.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
		case "pods":
			list, err = cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		}
		if err != nil {
			return nil, err
		}
		if items, err = meta.ExtractList(list); err != nil {
			return nil, err
		}
	}
	for _, it := range items {
		key, err := cache.MetaNamespaceKeyFunc(it)
		if err != nil {
			return nil, err
		}
		out[key] = it
	}
	return out, nil
}

// compareStore returns "" when store equals truth, else a description of
// the first differences.
func compareStore(truth map[string]runtime.Object, store []interface{}) string {
	if len(store) != len(truth) {
		return fmt.Sprintf("%d objects, direct LIST has %d", len(store), len(truth))
	}
	var bad []string
	for _, o := range store {
		obj := o.(runtime.Object)
		key, _ := cache.MetaNamespaceKeyFunc(obj)
		want, ok := truth[key]
		if !ok {
			bad = append(bad, key+": not in the direct LIST")
			continue
		}
		gotMeta, _ := meta.Accessor(obj)
		wantMeta, _ := meta.Accessor(want)
		if gotMeta.GetResourceVersion() != wantMeta.GetResourceVersion() {
			bad = append(bad, fmt.Sprintf("%s: resourceVersion %s, direct LIST has %s", key,
				gotMeta.GetResourceVersion(), wantMeta.GetResourceVersion()))
		} else if !objectsEqual(obj, want) {
			bad = append(bad, key+": same resourceVersion, different content")
		}
		if len(bad) >= 5 {
			break
		}
	}
	sort.Strings(bad)
	if len(bad) == 0 {
		return ""
	}
	return fmt.Sprint(bad)
}

func objectsEqual(a, b runtime.Object) bool {
	ua, okA := a.(*unstructured.Unstructured)
	ub, okB := b.(*unstructured.Unstructured)
	if okA && okB {
		return reflect.DeepEqual(ua.Object, ub.Object)
	}
	// Typed: the list and the watch decode into the same Go types; TypeMeta is
	// not part of the object's content (list items never carry it).
	a, b = a.DeepCopyObject(), b.DeepCopyObject()
	a.GetObjectKind().SetGroupVersionKind(b.GetObjectKind().GroupVersionKind())
	return apiequality.Semantic.DeepEqual(a, b)
}
