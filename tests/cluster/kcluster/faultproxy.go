package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// A TCP proxy between kube-cache-proxy and kube-apiserver that cuts the path
// on command, for the fault suite (tests/faults/run). Modes, set with
// GET /mode?set=MODE on the control address:
//
//	pass   bytes flow both ways (a frozen connection resumes where it stopped)
//	stall  connections open before the stall stop moving bytes (a half-open
//	       path: only keepalives can tell); new connections work
//	drop   a partition: no connection moves bytes, new ones included
//	reset  every connection is reset (RST), and so is each new one
type faultProxy struct {
	target string
	mu     sync.Mutex
	cond   *sync.Cond
	mode   string
	epoch  int64 // connections number from 1; a stall freezes those below stallEpoch
	stall  int64
	conns  map[*net.TCPConn]int64
}

func cmdFaultProxy(args []string) error {
	fs := flag.NewFlagSet("faultproxy", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address clients connect to")
	target := fs.String("target", "", "address to forward to (kube-apiserver)")
	control := fs.String("control", "127.0.0.1:0", "HTTP control address: GET /mode?set=pass|stall|drop|reset")
	_ = fs.Parse(args)
	if *target == "" {
		return fmt.Errorf("--target is required")
	}
	p := &faultProxy{target: *target, mode: "pass", conns: map[*net.TCPConn]int64{}}
	p.cond = sync.NewCond(&p.mu)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	cl, err := net.Listen("tcp", *control)
	if err != nil {
		return err
	}
	fmt.Printf("faultproxy listening on %s, control on %s, target %s\n", ln.Addr(), cl.Addr(), *target)
	os.Stdout.Sync()
	mux := http.NewServeMux()
	mux.HandleFunc("/mode", func(w http.ResponseWriter, r *http.Request) {
		if m := r.URL.Query().Get("set"); m != "" {
			if err := p.setMode(m); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		p.mu.Lock()
		fmt.Fprintf(w, "%s %d connections\n", p.mode, len(p.conns))
		p.mu.Unlock()
	})
	go func() { _ = http.Serve(cl, mux) }()
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go p.serve(c.(*net.TCPConn))
	}
}

func (p *faultProxy) setMode(m string) error {
	switch m {
	case "pass", "stall", "drop", "reset":
	default:
		return fmt.Errorf("unknown mode %q", m)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
	if m == "stall" {
		p.stall = p.epoch + 1
	}
	if m == "reset" {
		for c := range p.conns {
			resetConn(c)
		}
	}
	fmt.Fprintf(os.Stderr, "faultproxy: %s (%d connections)\n", m, len(p.conns))
	p.cond.Broadcast()
	return nil
}

func resetConn(c *net.TCPConn) {
	_ = c.SetLinger(0) // close sends RST
	_ = c.Close()
}

// frozen reports whether connection `id` may not move bytes now. Holds p.mu.
func (p *faultProxy) frozen(id int64) bool {
	return p.mode == "drop" || (p.mode == "stall" && id < p.stall)
}

func (p *faultProxy) serve(client *net.TCPConn) {
	p.mu.Lock()
	p.epoch++
	id := p.epoch
	if p.mode == "reset" {
		p.mu.Unlock()
		resetConn(client)
		return
	}
	p.mu.Unlock()
	d, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		resetConn(client)
		return
	}
	upstream := d.(*net.TCPConn)
	p.mu.Lock()
	p.conns[client], p.conns[upstream] = id, id
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(upstream, client, id) }()
	go func() { defer wg.Done(); p.pipe(client, upstream, id) }()
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, upstream)
	p.mu.Unlock()
}

// pipe copies src to dst, waiting before each write while the path is frozen.
// Whichever side ends (kube clients never half-close), both connections close.
func (p *faultProxy) pipe(dst, src *net.TCPConn, id int64) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.frozen(id) {
				p.cond.Wait()
			}
			p.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
