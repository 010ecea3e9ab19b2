package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"math/rand"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// restConfig loads a kubeconfig with client-side rate limits raised: kcluster
// generates load on purpose, and kube-apiserver's own flow control still applies.
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		return nil, errors.New("--kubeconfig is required")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 5000, 10000
	cfg.UserAgent = "kcluster"
	return cfg, nil
}

// namespaceOf spreads objects over PREFIX-0 .. PREFIX-(M-1).
func namespaceOf(prefix string, i, namespaces int) string {
	return fmt.Sprintf("%s-%d", prefix, i%namespaces)
}

func ensureNamespaces(ctx context.Context, cfg *rest.Config, prefix string, n int) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if err := ensureNamespace(ctx, cs, namespaceOf(prefix, i, n)); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return nil
}

// progress prints "\rWHAT: done/total (rate/s)" to stderr once a second until stopped.
func progress(what string, done *atomic.Int64, total int64) func() {
	start := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	print := func() {
		n := done.Load()
		fmt.Fprintf(os.Stderr, "\r%s: %d/%d (%.0f/s)   ", what, n, total, float64(n)/time.Since(start).Seconds())
	}
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				print()
				fmt.Fprintln(os.Stderr)
				return
			case <-t.C:
				print()
			}
		}
	}()
	return func() { close(stop); wg.Wait() }
}

func cmdLoad(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the cluster to load")
	resource := fs.String("resource", "configmaps", "configmaps, secrets, pods or widgets")
	count := fs.Int("count", 100, "number of objects to create")
	size := fs.Int("size", 0, "approximate JSON size of each object in bytes (0: the resource's default)")
	namespaces := fs.Int("namespaces", 1, "spread objects over this many namespaces")
	prefix := fs.String("namespace-prefix", "load", "namespaces are named PREFIX-0 .. PREFIX-(M-1)")
	concurrency := fs.Int("concurrency", 32, "concurrent create requests")
	groupSize := fs.Int("group-size", 0, "label objects group=g-(i/K) in groups of exactly K (an operator's owned sets); 0: the kind's own labels")
	_ = fs.Parse(args)

	rk, err := lookupKind(*resource)
	if err != nil {
		return err
	}
	if *size <= 0 {
		*size = rk.defaultSize
	}
	if *namespaces < 1 || *count < 0 || *concurrency < 1 {
		return errors.New("--namespaces and --concurrency must be at least 1, --count at least 0")
	}
	ctx := context.Background()
	dyn, err := prepare(ctx, *kubeconfig, *resource, *prefix, *namespaces)
	if err != nil {
		return err
	}

	start := time.Now()
	var done, existed atomic.Int64
	next := make(chan int)
	errs := make(chan error, *concurrency)
	stopProgress := progress("load "+*resource, &done, int64(*count))
	var wg sync.WaitGroup
	for w := 0; w < *concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				ns := namespaceOf(*prefix, i, *namespaces)
				name := fmt.Sprintf("%s-%06d", strings.ToLower(rk.kind), i)
				h := fnv.New64a()
				fmt.Fprint(h, ns, name)
				obj := rk.object(ns, name, *size, rand.New(rand.NewSource(int64(h.Sum64()))))
				if *groupSize > 0 {
					labels := obj.GetLabels()
					if labels == nil {
						labels = map[string]string{}
					}
					labels["group"] = fmt.Sprintf("g-%d", i / *groupSize)
					obj.SetLabels(labels)
				}
				err := retry(func() error {
					_, err := dyn.Resource(rk.gvr).Namespace(ns).Create(ctx, obj, metav1.CreateOptions{})
					return err
				})
				if apierrors.IsAlreadyExists(err) {
					existed.Add(1)
				} else if err != nil {
					errs <- fmt.Errorf("create %s/%s: %w", ns, name, err)
					return
				}
				done.Add(1)
			}
		}()
	}
	var firstErr error
feed:
	for i := 0; i < *count; i++ {
		select {
		case next <- i:
		case firstErr = <-errs:
			break feed
		}
	}
	close(next)
	wg.Wait()
	stopProgress()
	if firstErr == nil && len(errs) > 0 {
		firstErr = <-errs
	}
	if firstErr != nil {
		return firstErr
	}
	out, _ := json.Marshal(map[string]interface{}{
		"resource": *resource, "count": *count, "already_existed": existed.Load(), "size": *size,
		"namespaces": *namespaces, "seconds": time.Since(start).Seconds(),
	})
	fmt.Println(string(out))
	return nil
}

// prepare connects and makes sure the namespaces (and the widgets CRD) exist.
func prepare(ctx context.Context, kubeconfig, resource, prefix string, namespaces int) (dynamic.Interface, error) {
	cfg, err := restConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if err := ensureNamespaces(ctx, cfg, prefix, namespaces); err != nil {
		return nil, err
	}
	if resource == "widgets" {
		if err := ensureWidgetCRD(ctx, dyn); err != nil {
			return nil, err
		}
	}
	return dyn, nil
}

// retry retries transient failures (throttling, timeouts, conflicts) a few times.
func retry(f func() error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = f()
		if err == nil || !(apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) ||
			apierrors.IsTimeout(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err)) {
			return err
		}
		time.Sleep(time.Duration(100<<attempt) * time.Millisecond)
	}
	return err
}

func cmdChurn(args []string) error {
	fs := flag.NewFlagSet("churn", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the cluster to write to")
	resource := fs.String("resource", "configmaps", "configmaps, secrets, pods or widgets")
	rate := fs.Float64("rate", 10, "operations per second (create, update, delete at random)")
	duration := fs.Duration("duration", 10*time.Second, "how long to churn")
	seed := fs.Int64("seed", 1, "random seed: the same seed gives the same sequence of operations")
	size := fs.Int("size", 0, "approximate size of created objects (0: the resource's default)")
	namespaces := fs.Int("namespaces", 1, "namespaces PREFIX-0 .. PREFIX-(M-1) to churn in")
	prefix := fs.String("namespace-prefix", "load", "namespace name prefix")
	tolerate := fs.Bool("tolerate-errors", false, "count failed writes (kube-apiserver down: fault tests) instead of failing")
	_ = fs.Parse(args)

	rk, err := lookupKind(*resource)
	if err != nil {
		return err
	}
	if *size <= 0 {
		*size = rk.defaultSize
	}
	if *rate <= 0 || *namespaces < 1 {
		return errors.New("--rate must be positive and --namespaces at least 1")
	}
	ctx := context.Background()
	dyn, err := prepare(ctx, *kubeconfig, *resource, *prefix, *namespaces)
	if err != nil {
		return err
	}
	// The objects that exist now, per namespace, so updates and deletes hit real ones.
	type key struct{ ns, name string }
	var existing []key
	for n := 0; n < *namespaces; n++ {
		ns := namespaceOf(*prefix, n, *namespaces)
		list, err := dyn.Resource(rk.gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, it := range list.Items {
			existing = append(existing, key{ns, it.GetName()})
		}
	}

	rnd := rand.New(rand.NewSource(*seed))
	counts := map[string]int{}
	interval := time.Duration(float64(time.Second) / *rate)
	deadline := time.Now().Add(*duration)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for serial := 0; time.Now().Before(deadline); serial++ {
		<-tick.C
		op := rnd.Intn(3)
		if len(existing) == 0 {
			op = 0
		}
		var err error
		switch op {
		case 0: // create
			ns := namespaceOf(*prefix, rnd.Intn(*namespaces), *namespaces)
			name := fmt.Sprintf("churn-%d-%06d", *seed, serial)
			obj := rk.object(ns, name, *size, rnd)
			err = retry(func() error {
				_, err := dyn.Resource(rk.gvr).Namespace(ns).Create(ctx, obj, metav1.CreateOptions{})
				return err
			})
			if err == nil || apierrors.IsAlreadyExists(err) {
				existing = append(existing, key{ns, name})
				counts["create"]++
				err = nil
			}
		case 1: // update
			k := existing[rnd.Intn(len(existing))]
			err = retry(func() error {
				obj, err := dyn.Resource(rk.gvr).Namespace(k.ns).Get(ctx, k.name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				rk.mutate(obj.Object, rnd)
				if rnd.Intn(3) == 0 { // a label change: the object moves between label selections
					labels := obj.GetLabels()
					if labels == nil {
						labels = map[string]string{}
					}
					labels["tier"] = pick(rnd, []string{"frontend", "backend", "cache"})
					obj.SetLabels(labels)
				}
				_, err = dyn.Resource(rk.gvr).Namespace(k.ns).Update(ctx, obj, metav1.UpdateOptions{})
				return err
			})
			if err == nil {
				counts["update"]++
			}
		case 2: // delete
			i := rnd.Intn(len(existing))
			k := existing[i]
			existing[i] = existing[len(existing)-1]
			existing = existing[:len(existing)-1]
			err = retry(func() error {
				return dyn.Resource(rk.gvr).Namespace(k.ns).Delete(ctx, k.name, metav1.DeleteOptions{})
			})
			if err == nil {
				counts["delete"]++
			}
		}
		// NotFound/Conflict: another writer got there first; that is churn too.
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			counts["error"]++
			if !*tolerate || counts["error"] <= 3 {
				fmt.Fprintf(os.Stderr, "churn: %v\n", err)
			}
		}
	}
	out, _ := json.Marshal(map[string]interface{}{"resource": *resource, "seed": *seed, "ops": counts})
	fmt.Println(string(out))
	if counts["error"] > 0 && !*tolerate {
		return fmt.Errorf("%d operations failed", counts["error"])
	}
	return nil
}
