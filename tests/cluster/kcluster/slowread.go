package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
)

// cmdSlowread is a client that reads 1 MB of a response, stops reading for a
// while, then reads the rest, over client-go's transport (HTTP/2 when the
// server offers it). It checks every item arrives and that the RSS of --pid
// (the proxy) never grows by more than a bound above its level before.
func cmdSlowread(args []string) error {
	fs := flag.NewFlagSet("slowread", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig to read through (e.g. the proxy's)")
	path := fs.String("path", "", "request path, e.g. /apis/example.com/v1/widgets")
	pause := fs.Duration("pause", 20*time.Second, "how long to stop reading after the first MB")
	pid := fs.Int("pid", 0, "process whose RSS to watch")
	maxGrowth := fs.Float64("max-rss-growth-mb", 64, "fail if the RSS of --pid grows more than this")
	expect := fs.Int("expect-items", -1, "fail unless the list has this many items")
	_ = fs.Parse(args)
	if *path == "" || *pid == 0 {
		return errors.New("--path and --pid are required")
	}
	cfg, err := restConfig(*kubeconfig)
	if err != nil {
		return err
	}
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		return err
	}
	idle, err := rssMB(*pid)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	peak := idle
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
				if r, err := rssMB(*pid); err == nil {
					mu.Lock()
					peak = max(peak, r)
					mu.Unlock()
				}
			}
		}
	}()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, strings.TrimSuffix(cfg.Host, "/")+*path, nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Accept-Encoding", "identity")
	start := time.Now()
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 2000))
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "slowread: read 1 MB over %s, pausing %s\n", resp.Proto, *pause)
	time.Sleep(*pause)
	body := io.MultiReader(strings.NewReader(string(head)), resp.Body)
	counter := &countingReader{r: bufio.NewReaderSize(body, 1<<20)}
	items, err := countItems(json.NewDecoder(counter))
	if err != nil {
		return fmt.Errorf("the body is not a whole JSON list: %w", err)
	}
	close(stop)
	mu.Lock()
	growth := peak - idle
	mu.Unlock()
	out, _ := json.Marshal(map[string]interface{}{
		"protocol": resp.Proto, "bytes": counter.n, "items": items, "seconds": time.Since(start).Seconds(),
		"rss_idle_mb": idle, "rss_peak_mb": peak, "rss_growth_mb": growth,
	})
	fmt.Println(string(out))
	if *expect >= 0 && items != *expect {
		return fmt.Errorf("%d items, expected %d", items, *expect)
	}
	if growth > *maxGrowth {
		return fmt.Errorf("RSS grew by %.1f MB, bound %.1f MB", growth, *maxGrowth)
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func rssMB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// countItems reads a JSON list to its end, one item at a time (a reader of a
// 1 GB list holds one item, not the list), and returns how many it had.
func countItems(dec *json.Decoder) (int, error) {
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return 0, fmt.Errorf("not an object (%v)", err)
	}
	items := 0
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return 0, err
		}
		if key != "items" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return 0, err
			}
			continue
		}
		if t, err := dec.Token(); err != nil || (t != json.Delim('[') && t != nil) {
			return 0, fmt.Errorf("items is not a list (%v)", err)
		} else if t == nil {
			continue // "items": null
		}
		for dec.More() {
			var item json.RawMessage
			if err := dec.Decode(&item); err != nil {
				return 0, err
			}
			items++
		}
		if _, err := dec.Token(); err != nil { // ]
			return 0, err
		}
	}
	if _, err := dec.Token(); err != nil { // }
		return 0, err
	}
	return items, nil
}
