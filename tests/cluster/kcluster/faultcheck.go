package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// faultcheck runs client-go informers and raw watchers through the proxy for
// as long as its stdin stays open, while the fault suite breaks things around
// them. Each line "check NAME" on stdin waits until every informer's store
// and every watcher's state equal a direct LIST of kube-apiserver (churn has
// stopped by then), and prints one line ("quit" ends it):
//
//	NAME: 2 informers equal ground truth (412 objects); 4 watchers: 0 lost, 0 duplicated (1890 events, 1 relist)
//
// A raw watcher applies every event to its own map and counts what a gap or
// a repeat would show: MODIFIED or DELETED of an object it does not have
// (lost), ADDED of one it has or a resourceVersion that does not grow
// (duplicated), and after the check's wait, any object that differs from the
// direct LIST (lost). A watch that ends is resumed from the last
// resourceVersion; a 410 makes the watcher relist, as a reflector would.
func cmdFaultCheck(args []string) error {
	fs := flag.NewFlagSet("faultcheck", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the proxy (informers and watchers connect through it)")
	verifyAgainst := fs.String("verify-against", "", "admin kubeconfig of kube-apiserver: ground truth")
	resource := fs.String("resource", "configmaps", "configmaps, secrets, pods or widgets")
	informers := fs.Int("informers", 2, "client-go informers")
	protobuf := fs.Bool("protobuf", false, "informers ask for protobuf")
	metadataOnly := fs.Bool("metadata", false, "metadata-only informers (PartialObjectMetadata, as the garbage collector's)")
	watchList := fs.String("watch-list", "", "true|false: client-go's WatchListClient feature")
	watchers := fs.Int("watchers", 4, "raw watchers (every other one with the label selector tier=backend)")
	settle := fs.Duration("settle", 90*time.Second, "how long a check waits for everything to equal ground truth")
	_ = fs.Parse(args)

	rk, err := lookupKind(*resource)
	if err != nil {
		return err
	}
	if *watchList != "" {
		os.Setenv("KUBE_FEATURE_WatchListClient", *watchList)
	}
	cfg, err := restConfig(*kubeconfig)
	if err != nil {
		return err
	}
	admin, err := restConfig(*verifyAgainst)
	if err != nil {
		return err
	}
	informerCfg := rest.CopyConfig(cfg)
	if *protobuf {
		informerCfg.ContentType = runtime.ContentTypeProtobuf
		informerCfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	}
	stop := make(chan struct{})
	defer close(stop)
	indexers := make([]cache.Indexer, *informers)
	synced := make([]cache.InformerSynced, *informers)
	for i := range indexers {
		if indexers[i], synced[i], err = startInformer(rest.CopyConfig(informerCfg), rk, *metadataOnly, stop); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ws := make([]*rawWatcher, *watchers)
	for i := range ws {
		ws[i] = &rawWatcher{client: dyn.Resource(rk.gvr), state: map[string]uint64{}}
		if i%2 == 1 {
			ws[i].selector = "tier=backend"
		}
		go ws[i].run(ctx)
	}
	syncCtx, syncCancel := context.WithTimeout(ctx, 3*time.Minute)
	ok := cache.WaitForCacheSync(syncCtx.Done(), synced...)
	syncCancel()
	if !ok {
		return errors.New("informers did not sync within 3m")
	}
	fmt.Printf("faultcheck: %d informers synced, %d watchers running\n", *informers, *watchers)

	failed := 0
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if strings.TrimSpace(in.Text()) == "quit" {
			break
		}
		name, found := strings.CutPrefix(strings.TrimSpace(in.Text()), "check ")
		if !found {
			continue
		}
		line, good := check(ctx, admin, rk, *metadataOnly, indexers, ws, *settle)
		if !good {
			failed++
		}
		fmt.Printf("%s: %s\n", name, line)
	}
	if failed > 0 {
		return fmt.Errorf("%d checks failed", failed)
	}
	return nil
}

// check waits until informers and watchers equal a direct LIST, and
// describes the outcome in one line.
func check(ctx context.Context, admin *rest.Config, rk *resourceKind, metadataOnly bool, indexers []cache.Indexer, ws []*rawWatcher,
	settle time.Duration) (string, bool) {
	deadline := time.Now().Add(settle)
	for {
		truth, err := directList(ctx, admin, rk, metadataOnly)
		informerDiff, watcherDiffs := "", 0
		if err != nil {
			informerDiff = "direct LIST failed: " + err.Error()
		} else {
			for i, idx := range indexers {
				if d := compareStore(truth, idx.List()); d != "" {
					informerDiff = fmt.Sprintf("informer %d: %s", i, d)
					break
				}
			}
			for _, w := range ws {
				watcherDiffs += len(w.differences(truth))
			}
		}
		if (informerDiff == "" && watcherDiffs == 0) || time.Now().After(deadline) {
			var lost, dup, events, relists int
			var details []string
			for i, w := range ws {
				l, d, e, r, why := w.counts()
				if err == nil {
					diff := w.differences(truth)
					l += len(diff)
					if len(diff) > 0 {
						why = append(why, fmt.Sprintf("differs from the direct LIST: %v", head(diff, 5)))
					}
				}
				lost, dup, events, relists = lost+l, dup+d, events+e, relists+r
				for _, x := range why {
					details = append(details, fmt.Sprintf("watcher %d (%s): %s", i, w.describe(), x))
				}
			}
			informers := fmt.Sprintf("%d informers equal ground truth (%d objects)", len(indexers), len(truth))
			if informerDiff != "" {
				informers = "informers differ from ground truth: " + informerDiff
			}
			line := fmt.Sprintf("%s; %d watchers: %d lost, %d duplicated (%d events, %d relists)",
				informers, len(ws), lost, dup, events, relists)
			good := informerDiff == "" && lost == 0 && dup == 0
			if !good {
				line += " FAILED " + strings.Join(head(details, 8), "; ")
			}
			return line, good
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func head(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("... %d more", len(s)-n))
	}
	return s
}

// rawWatcher is a watch client as simple as a reflector: LIST, WATCH from the
// list's resourceVersion with bookmarks, resume where it ended, relist on 410.
type rawWatcher struct {
	client   dynamic.NamespaceableResourceInterface
	selector string

	mu      sync.Mutex
	state   map[string]uint64 // namespace/name -> resourceVersion
	lastRV  uint64
	events  int
	lost    int
	dup     int
	relists int
	why     []string // the first anomalies, for the report
}

func (w *rawWatcher) describe() string {
	if w.selector == "" {
		return "all"
	}
	return w.selector
}

func (w *rawWatcher) anomaly(lost bool, format string, args ...interface{}) {
	if lost {
		w.lost++
	} else {
		w.dup++
	}
	if len(w.why) < 5 {
		w.why = append(w.why, fmt.Sprintf(format, args...))
	}
}

func (w *rawWatcher) counts() (lost, dup, events, relists int, why []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lost, w.dup, w.events, w.relists, append([]string(nil), w.why...)
}

// differences lists the keys where the watcher's state is not truth (as
// selected by its label selector).
func (w *rawWatcher) differences(truth map[string]runtime.Object) []string {
	sel, _ := labels.Parse(w.selector)
	want := map[string]uint64{}
	for key, obj := range truth {
		m, _ := meta.Accessor(obj)
		if sel.Matches(labels.Set(m.GetLabels())) {
			rv, _ := strconv.ParseUint(m.GetResourceVersion(), 10, 64)
			want[key] = rv
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var diff []string
	for key, rv := range want {
		if got, ok := w.state[key]; !ok {
			diff = append(diff, key+" missing")
		} else if got != rv {
			diff = append(diff, fmt.Sprintf("%s at %d, not %d", key, got, rv))
		}
	}
	for key := range w.state {
		if _, ok := want[key]; !ok {
			diff = append(diff, key+" should be gone")
		}
	}
	sort.Strings(diff)
	return diff
}

func (w *rawWatcher) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	relist := true
	for ctx.Err() == nil {
		if relist {
			if err := w.list(ctx); err != nil {
				time.Sleep(backoff)
				backoff = min(2*backoff, 2*time.Second)
				continue
			}
			relist = false
		}
		w.mu.Lock()
		from := w.lastRV
		w.mu.Unlock()
		wi, err := w.client.Watch(ctx, metav1.ListOptions{LabelSelector: w.selector, AllowWatchBookmarks: true,
			ResourceVersion: strconv.FormatUint(from, 10)})
		if err != nil {
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				relist = true
			}
			time.Sleep(backoff)
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		relist = w.consume(wi)
		wi.Stop()
	}
}

func (w *rawWatcher) list(ctx context.Context) error {
	list, err := w.client.List(ctx, metav1.ListOptions{LabelSelector: w.selector})
	if err != nil {
		return err
	}
	rv, err := strconv.ParseUint(list.GetResourceVersion(), 10, 64)
	if err != nil {
		return err
	}
	state := map[string]uint64{}
	for _, it := range list.Items {
		key, _ := cache.MetaNamespaceKeyFunc(&it)
		state[key], _ = strconv.ParseUint(it.GetResourceVersion(), 10, 64)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lastRV != 0 {
		w.relists++
	}
	w.state, w.lastRV = state, rv
	return nil
}

// consume applies events until the watch ends; true when it ended with 410.
func (w *rawWatcher) consume(wi watch.Interface) bool {
	for ev := range wi.ResultChan() {
		if ev.Type == watch.Error {
			status := apierrors.FromObject(ev.Object)
			return apierrors.IsResourceExpired(status) || apierrors.IsGone(status)
		}
		m, err := meta.Accessor(ev.Object)
		if err != nil {
			continue
		}
		rv, _ := strconv.ParseUint(m.GetResourceVersion(), 10, 64)
		w.mu.Lock()
		if ev.Type == watch.Bookmark {
			if rv < w.lastRV {
				w.anomaly(false, "bookmark at %d after %d", rv, w.lastRV)
			}
			w.lastRV = max(w.lastRV, rv)
			w.mu.Unlock()
			continue
		}
		key, _ := cache.MetaNamespaceKeyFunc(ev.Object)
		w.events++
		if rv <= w.lastRV {
			w.anomaly(false, "%s %s at %d, not after %d", ev.Type, key, rv, w.lastRV)
		}
		_, had := w.state[key]
		switch ev.Type {
		case watch.Added:
			if had {
				w.anomaly(false, "ADDED %s at %d, already had it at %d", key, rv, w.state[key])
			}
			w.state[key] = rv
		case watch.Modified:
			if !had {
				w.anomaly(true, "MODIFIED %s at %d, never saw it added", key, rv)
			}
			w.state[key] = rv
		case watch.Deleted:
			if !had {
				w.anomaly(true, "DELETED %s at %d, never saw it added", key, rv)
			}
			delete(w.state, key)
		}
		w.lastRV = max(w.lastRV, rv)
		w.mu.Unlock()
	}
	return false
}
