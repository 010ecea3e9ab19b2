package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// How long one watch may take from leaving the connect queue to its response
// headers, and how long the watchers get after the last write to receive it.
const (
	watchfanConnectTimeout = 2 * time.Minute
	watchfanDrainTimeout   = 10 * time.Second
	watchfanMaxErrors      = 5
)

// cmdWatchfan is a watch fan-out benchmark: many concurrent WATCHes of one
// namespace's configmaps (HTTP/2 streams multiplexed over few connections,
// and HTTP/1.1 watches on a connection each), one writer updating a single
// configmap at a fixed rate with the write time in data.t, and the delivery
// latency of every event at every watcher.
func cmdWatchfan(args []string) error {
	fs := flag.NewFlagSet("watchfan", flag.ExitOnError)
	baseURL := fs.String("url", "", "base URL to watch: http://HOST:PORT (HTTP/1.1, and HTTP/2 with prior knowledge) or https://HOST:PORT")
	kubeconfig := fs.String("kubeconfig", "", "optional: TLS settings and credentials for --url come from this kubeconfig (its server is ignored)")
	writerKubeconfig := fs.String("writer-kubeconfig", "", "kubeconfig the writer updates the configmap through (kube-apiserver directly, admin)")
	namespace := fs.String("namespace", "fanout", "namespace of the configmap (created if missing)")
	name := fs.String("name", "tick", "configmap the writer updates (created if missing)")
	nH2 := fs.Int("h2", 1000, "watchers over HTTP/2 (streams multiplexed per connection)")
	nH1 := fs.Int("h1", 100, "watchers over HTTP/1.1 (one connection each)")
	rate := fs.Float64("rate", 10, "configmap updates per second")
	duration := fs.Duration("duration", 20*time.Second, "how long the writer writes once all watchers are connected")
	connectConcurrency := fs.Int("connect-concurrency", 200, "watches being opened at once")
	_ = fs.Parse(args)

	if *baseURL == "" || *writerKubeconfig == "" {
		return errors.New("--url and --writer-kubeconfig are required")
	}
	base := strings.TrimSuffix(*baseURL, "/")
	https := strings.HasPrefix(base, "https://")
	if !https && !strings.HasPrefix(base, "http://") {
		return fmt.Errorf("--url %q: must start with http:// or https://", *baseURL)
	}
	if *nH2 < 0 || *nH1 < 0 || *nH2+*nH1 == 0 {
		return errors.New("--h2 and --h1 must be at least 0, and not both 0")
	}
	if *rate <= 0 || *duration <= 0 || *connectConcurrency < 1 {
		return errors.New("--rate and --duration must be positive, --connect-concurrency at least 1")
	}
	total := *nH2 + *nH1
	if limit, err := raiseNofileLimit(); err != nil {
		fmt.Fprintf(os.Stderr, "watchfan: raising RLIMIT_NOFILE: %v\n", err)
	} else if need := uint64(*nH1 + *nH2/100 + 128); limit < need {
		fmt.Fprintf(os.Stderr, "watchfan: RLIMIT_NOFILE is %d, ~%d file descriptors needed\n", limit, need)
	}

	// The writer's side: the namespace, the configmap and the common starting point.
	ctx := context.Background()
	wcfg, err := restConfig(*writerKubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(wcfg)
	if err != nil {
		return err
	}
	if err := ensureNamespace(ctx, cs, *namespace); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", *namespace, err)
	}
	cms := cs.CoreV1().ConfigMaps(*namespace)
	_, err = cms.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: *name},
		Data:       map[string]string{"t": "0"},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create configmap %s/%s: %w", *namespace, *name, err)
	}
	list, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list configmaps in %s: %w", *namespace, err)
	}
	rv := list.ResourceVersion
	watchURL := fmt.Sprintf("%s/api/v1/namespaces/%s/configmaps?watch=1&resourceVersion=%s", base, *namespace, rv)

	// The watchers' side.
	clients, err := newWatchfanClients(*kubeconfig, https)
	if err != nil {
		return err
	}
	defer clients.closeIdle()

	watchCtx, cancelWatches := context.WithCancel(ctx)
	defer cancelWatches()
	var stopping atomic.Bool
	watchers := make([]*fanWatcher, total)
	sem := make(chan struct{}, *connectConcurrency)
	var attempted, connected atomic.Int64
	connectDone := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	fmt.Fprintf(os.Stderr, "watchfan: opening %d HTTP/2 and %d HTTP/1.1 watches on %s from resourceVersion %s\n",
		*nH2, *nH1, base, rv)
	stopProgress := progress("watchfan connect", &attempted, int64(total))
	for i := range watchers {
		w := &fanWatcher{h2: i < *nH2}
		watchers[i] = w
		client := clients.h1
		if w.h2 {
			client = clients.h2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.finished.Store(true)
			err := w.run(watchCtx, client, watchURL, sem, func(ok bool) {
				if ok {
					connected.Add(1)
				}
				if attempted.Add(1) == int64(total) {
					close(connectDone)
				}
			})
			if err != nil && !stopping.Load() {
				w.err = err
			}
		}()
	}
	<-connectDone
	stopProgress()
	connectSeconds := time.Since(start).Seconds()
	fmt.Fprintf(os.Stderr, "watchfan: %d watchers connected in %.1f s", connected.Load(), connectSeconds)
	if n := int64(total) - connected.Load(); n > 0 {
		fmt.Fprintf(os.Stderr, " (%d failed to connect)", n)
	}
	fmt.Fprintln(os.Stderr)

	// The writer.
	var writes, writeErrors int64
	var writeErrMsgs []string
	if connected.Load() > 0 {
		fmt.Fprintf(os.Stderr, "watchfan: updating %s/%s at %g/s for %s\n", *namespace, *name, *rate, *duration)
		writes, writeErrors, writeErrMsgs = watchfanWrite(ctx, cs, *namespace, *name, *rate, *duration)
		fmt.Fprintf(os.Stderr, "watchfan: %d writes (%d failed); waiting up to %s for the watchers\n",
			writes, writeErrors, watchfanDrainTimeout)
		drainDeadline := time.Now().Add(watchfanDrainTimeout)
		for time.Now().Before(drainDeadline) {
			pending := 0
			for _, w := range watchers {
				if !w.finished.Load() && w.count.Load() < writes {
					pending++
				}
			}
			if pending == 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	stopping.Store(true)
	cancelWatches()
	wg.Wait()

	// Results.
	var merged latencyHist
	var received int64
	failed := 0
	var errMsgs []string
	for i, w := range watchers {
		received += w.count.Load()
		merged.merge(&w.hist)
		if w.err != nil {
			failed++
			if len(errMsgs) < watchfanMaxErrors {
				errMsgs = append(errMsgs, fmt.Sprintf("watcher %d (%s): %v", i, w.proto(), w.err))
			}
		}
	}
	expected := writes * int64(total)
	res := struct {
		URL            string  `json:"url"`
		WatchersH2     int     `json:"watchers_h2"`
		WatchersH1     int     `json:"watchers_h1"`
		ConnectSeconds float64 `json:"connect_seconds"`
		Writes         int64   `json:"writes"`
		ExpectedEvents int64   `json:"expected_events"`
		ReceivedEvents int64   `json:"received_events"`
		FailedWatchers int     `json:"failed_watchers"`
		P50ms          float64 `json:"p50_ms"`
		P99ms          float64 `json:"p99_ms"`
		MaxMs          float64 `json:"max_ms"`
		WriteErrors    int64   `json:"write_errors"`
		H2Connections  int64   `json:"h2_connections"`
		H1Connections  int64   `json:"h1_connections"`
	}{
		URL: base, WatchersH2: *nH2, WatchersH1: *nH1, ConnectSeconds: round3(connectSeconds),
		Writes: writes, ExpectedEvents: expected, ReceivedEvents: received, FailedWatchers: failed,
		P50ms: round3(merged.quantileMs(0.50)), P99ms: round3(merged.quantileMs(0.99)),
		MaxMs: round3(float64(merged.max) / 1e6), WriteErrors: writeErrors,
		H2Connections: clients.h2Dials.Load(), H1Connections: clients.h1Dials.Load(),
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))

	for _, m := range writeErrMsgs {
		fmt.Fprintf(os.Stderr, "watchfan: write: %s\n", m)
	}
	for _, m := range errMsgs {
		fmt.Fprintf(os.Stderr, "watchfan: %s\n", m)
	}
	var reasons []string
	if failed > 0 {
		reasons = append(reasons, fmt.Sprintf("%d of %d watchers failed", failed, total))
	}
	if writes == 0 {
		reasons = append(reasons, "no successful writes")
	}
	if float64(received) < 0.99*float64(expected) {
		reasons = append(reasons, fmt.Sprintf("%d of %d expected events received (%.2f%%, need 99%%)",
			received, expected, 100*float64(received)/float64(expected)))
	}
	if len(reasons) > 0 {
		return errors.New(strings.Join(reasons, "; "))
	}
	return nil
}

// raiseNofileLimit raises the soft RLIMIT_NOFILE to the hard limit and returns it.
func raiseNofileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, err
		}
	}
	return lim.Cur, nil
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// watchfanClients are the two HTTP clients of the watchers, with counters of
// the connections each opened.
type watchfanClients struct {
	h2, h1           *http.Client
	h2t              *http2.Transport
	h1t              *http.Transport
	h2Dials, h1Dials atomic.Int64
}

func (c *watchfanClients) closeIdle() {
	c.h2t.CloseIdleConnections()
	c.h1t.CloseIdleConnections()
}

// newWatchfanClients builds an HTTP/2 client (h2c with prior knowledge for
// http://, ALPN h2 for https://) that opens another connection whenever one
// reaches the server's SETTINGS_MAX_CONCURRENT_STREAMS, and an HTTP/1.1-only
// client with no limit on connections. TLS settings and credentials come from
// kubeconfig when given.
func newWatchfanClients(kubeconfig string, https bool) (*watchfanClients, error) {
	var tlsCfg *tls.Config
	var cfg *rest.Config
	if kubeconfig != "" {
		var err error
		if cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig); err != nil {
			return nil, err
		}
		cfg.UserAgent = "kcluster-watchfan"
		if tlsCfg, err = rest.TLSConfigFor(cfg); err != nil {
			return nil, err
		}
	}
	if tlsCfg == nil {
		tlsCfg = &tls.Config{}
	}
	c := &watchfanClients{}
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}

	c.h2t = &http2.Transport{
		StrictMaxConcurrentStreams: false, // more connections past the server's stream limit
		DisableCompression:         true,
	}
	if https {
		h2tls := tlsCfg.Clone()
		h2tls.NextProtos = []string{http2.NextProtoTLS}
		c.h2t.TLSClientConfig = h2tls
		c.h2t.DialTLSContext = func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
			conn, err := (&tls.Dialer{NetDialer: dialer, Config: cfg}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if p := conn.(*tls.Conn).ConnectionState().NegotiatedProtocol; p != http2.NextProtoTLS {
				conn.Close()
				return nil, fmt.Errorf("the server negotiated %q, not h2", p)
			}
			c.h2Dials.Add(1)
			return conn, nil
		}
	} else {
		c.h2t.AllowHTTP = true
		c.h2t.DialTLSContext = func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, addr)
			if err == nil {
				c.h2Dials.Add(1)
			}
			return conn, err
		}
	}

	h1tls := tlsCfg.Clone()
	h1tls.NextProtos = []string{"http/1.1"}
	c.h1t = &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, addr)
			if err == nil {
				c.h1Dials.Add(1)
			}
			return conn, err
		},
		TLSClientConfig:     h1tls,
		TLSHandshakeTimeout: 30 * time.Second,
		ForceAttemptHTTP2:   false,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // no HTTP/2
		MaxConnsPerHost:     0,
		MaxIdleConns:        100000,
		MaxIdleConnsPerHost: 100000,
		DisableCompression:  true,
	}

	var h2rt, h1rt http.RoundTripper = c.h2t, c.h1t
	if cfg != nil {
		// Bearer tokens, basic auth, impersonation: whatever else the kubeconfig says.
		var err error
		if h2rt, err = rest.HTTPWrappersForConfig(cfg, h2rt); err != nil {
			return nil, err
		}
		if h1rt, err = rest.HTTPWrappersForConfig(cfg, h1rt); err != nil {
			return nil, err
		}
	}
	c.h2 = &http.Client{Transport: h2rt}
	c.h1 = &http.Client{Transport: h1rt}
	return c, nil
}

// fanWatcher is one watch: its event count (read while it runs), and its
// latency histogram and error (read once it has ended).
type fanWatcher struct {
	h2       bool
	count    atomic.Int64
	finished atomic.Bool
	hist     latencyHist
	err      error
}

func (w *fanWatcher) proto() string {
	if w.h2 {
		return "HTTP/2"
	}
	return "HTTP/1.1"
}

// run opens the watch (holding a slot of sem meanwhile; connected reports the
// outcome), then reads events until the stream ends or ctx is cancelled.
func (w *fanWatcher) run(ctx context.Context, client *http.Client, url string, sem chan struct{}, connected func(ok bool)) error {
	sem <- struct{}{}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	timer := time.AfterFunc(watchfanConnectTimeout, cancel)
	resp, err := w.open(wctx, client, url)
	timedOut := !timer.Stop()
	<-sem
	if timedOut {
		if err == nil {
			resp.Body.Close()
		}
		err = fmt.Errorf("no response headers within %s", watchfanConnectTimeout)
	}
	connected(err == nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return w.read(resp.Body)
}

// open sends the watch request, retrying a few times on 429, and requires a
// 200 over the expected protocol.
func (w *fanWatcher) open(ctx context.Context, client *http.Client, url string) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", "kcluster-watchfan")
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusTooManyRequests && attempt < 5 {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			wait := time.Duration(100<<attempt) * time.Millisecond
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				wait = min(time.Duration(s)*time.Second, 5*time.Second)
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(wait):
			}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
			resp.Body.Close()
			return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
		}
		if w.h2 != (resp.ProtoMajor == 2) {
			resp.Body.Close()
			return nil, fmt.Errorf("response over %s, expected %s", resp.Proto, w.proto())
		}
		return resp, nil
	}
}

var (
	watchfanTimeKey = []byte(`"t":"`)
	watchfanError   = []byte(`"type":"ERROR"`)
)

// read takes the stream a line (an event) at a time without decoding it: the
// write time is the decimal after the first "t":" (only data.t has that key).
func (w *fanWatcher) read(body io.Reader) error {
	br := bufio.NewReaderSize(body, 64<<10)
	var long []byte // a line longer than the buffer, assembled
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long, line...)
			continue
		}
		now := time.Now().UnixNano()
		if len(long) > 0 {
			long = append(long, line...)
			line = long
		}
		if len(bytes.TrimSpace(line)) > 0 {
			if i := bytes.Index(line, watchfanTimeKey); i >= 0 {
				t, n := int64(0), 0
				for _, c := range line[i+len(watchfanTimeKey):] {
					if c < '0' || c > '9' {
						break
					}
					t = t*10 + int64(c-'0')
					n++
				}
				if n > 0 && t > 0 {
					w.hist.add(now - t)
					w.count.Add(1)
				}
			} else if bytes.Contains(line, watchfanError) {
				if len(line) > 300 {
					line = line[:300]
				}
				return fmt.Errorf("ERROR event after %d events: %s", w.count.Load(), bytes.TrimSpace(line))
			}
		}
		long = long[:0]
		if err == io.EOF {
			return fmt.Errorf("stream closed by the server after %d events", w.count.Load())
		} else if err != nil {
			return fmt.Errorf("after %d events: %w", w.count.Load(), err)
		}
	}
}

// latencyHist is a fixed-size log-linear histogram of latencies in
// microseconds: 1 µs resolution below 64 µs, then 64 buckets per power of
// two (under 1.6% wide), up to 10 s; above that an overflow count. The
// maximum is kept exactly.
type latencyHist struct {
	buckets  [histSub * (histOctaves + 1)]uint32
	overflow uint32
	max      int64 // ns
}

const (
	histSub     = 64
	histOctaves = 18 // bits.Len64(10 s in µs) - 6
	histLimitUs = 10_000_000
)

func (h *latencyHist) add(ns int64) {
	ns = max(ns, 0)
	h.max = max(h.max, ns)
	us := uint64(ns / 1000)
	if us >= histLimitUs {
		h.overflow++
		return
	}
	h.buckets[histIndex(us)]++
}

func histIndex(us uint64) int {
	if us < histSub {
		return int(us)
	}
	k := bits.Len64(us) - 7 // us>>k is in [64, 128)
	return histSub + k*histSub + int(us>>k) - histSub
}

// histBounds returns a bucket's [lower, upper) in µs.
func histBounds(i int) (uint64, uint64) {
	if i < histSub {
		return uint64(i), uint64(i + 1)
	}
	k := (i - histSub) / histSub
	m := uint64((i-histSub)%histSub + histSub)
	return m << k, (m + 1) << k
}

func (h *latencyHist) merge(o *latencyHist) {
	for i, n := range o.buckets {
		h.buckets[i] += n
	}
	h.overflow += o.overflow
	h.max = max(h.max, o.max)
}

// quantileMs is the q-quantile in ms: the middle of its bucket, at most the
// maximum (which it is when the quantile falls in the overflow).
func (h *latencyHist) quantileMs(q float64) float64 {
	var total uint64
	for _, n := range h.buckets {
		total += uint64(n)
	}
	total += uint64(h.overflow)
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	rank = max(rank, 1)
	maxMs := float64(h.max) / 1e6
	var seen uint64
	for i, n := range h.buckets {
		seen += uint64(n)
		if seen >= rank {
			lo, hi := histBounds(i)
			return min(float64(lo+hi)/2/1000, maxMs)
		}
	}
	return maxMs
}

// watchfanWrite updates the configmap's data.t to the current UnixNano at
// rate for duration, re-reading it on conflicts. It returns the successful
// and failed writes and the first few errors.
func watchfanWrite(ctx context.Context, cs kubernetes.Interface, ns, name string, rate float64, duration time.Duration) (int64, int64, []string) {
	cms := cs.CoreV1().ConfigMaps(ns)
	var writes, failures int64
	var msgs []string
	fail := func(err error) {
		failures++
		if len(msgs) < watchfanMaxErrors {
			msgs = append(msgs, err.Error())
		}
	}
	cm, err := cms.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		fail(err)
		return 0, failures, msgs
	}
	write := func() error {
		for attempt := 0; ; attempt++ {
			var out *corev1.ConfigMap
			err := retry(func() error {
				c := cm.DeepCopy()
				if c.Data == nil {
					c.Data = map[string]string{}
				}
				c.Data["t"] = strconv.FormatInt(time.Now().UnixNano(), 10)
				var err error
				out, err = cms.Update(ctx, c, metav1.UpdateOptions{})
				return err
			})
			if err == nil {
				cm = out
				return nil
			}
			if !apierrors.IsConflict(err) || attempt >= 5 {
				return err
			}
			fresh, gerr := cms.Get(ctx, name, metav1.GetOptions{})
			if gerr != nil {
				return gerr
			}
			cm = fresh
		}
	}
	interval := time.Duration(float64(time.Second) / rate)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	end := time.NewTimer(duration)
	defer end.Stop()
	for {
		select {
		case <-end.C:
			return writes, failures, msgs
		case <-ticker.C:
			if err := write(); err != nil {
				fail(err)
			} else {
				writes++
			}
		}
	}
}
