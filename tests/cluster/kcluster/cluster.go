package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// clusterEnv is DIR/env: the ports, pids and paths of one cluster, written as
// shell-sourceable KEY=VALUE lines so that scripts can `source DIR/env`.
type clusterEnv map[string]string

func envPath(dir string) string { return filepath.Join(dir, "env") }

func readEnv(dir string) (clusterEnv, error) {
	f, err := os.Open(envPath(dir))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := clusterEnv{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && !strings.HasPrefix(k, "#") {
			env[k] = strings.Trim(v, "'")
		}
	}
	return env, sc.Err()
}

func (e clusterEnv) write(dir string) error {
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# written by kcluster up; source it from a shell\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s='%s'\n", k, e[k])
	}
	tmp := envPath(dir) + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, envPath(dir))
}

func (e clusterEnv) pid(name string) int {
	n, _ := strconv.Atoi(e[name])
	return n
}

// binDir holds etcd, kube-apiserver and kubectl next to kcluster itself.
func binDir() string {
	exe, err := os.Executable()
	if err != nil {
		return "."
	}
	return filepath.Dir(exe)
}

// alive reports whether pid is a running process whose command is binary
// (so a recycled pid is not mistaken for ours).
func alive(pid int, binary string) bool {
	ok, _ := aliveWhy(pid, binary)
	return ok
}

// aliveWhy is alive, with what it saw when the answer is no.
func aliveWhy(pid int, binary string) (bool, string) {
	if pid <= 0 {
		return false, "no pid"
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false, err.Error()
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false, err.Error()
	}
	if strings.Contains(string(stat), ") Z ") {
		return false, "a zombie"
	}
	if argv0 := strings.SplitN(string(cmdline), "\x00", 2)[0]; !strings.Contains(argv0, binary) {
		return false, fmt.Sprintf("pid %d runs %q", pid, argv0)
	}
	return true, ""
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

func cmdUp(args []string) error {
	controlPlaneMode := len(args) == 2 && args[1] == "--control-plane"
	if len(args) != 1 && !controlPlaneMode {
		return errors.New("usage: kcluster up DIR [--control-plane]")
	}
	dir, err := filepath.Abs(args[0])
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return err
	}
	env, err := readEnv(dir)
	if errors.Is(err, os.ErrNotExist) {
		env = clusterEnv{}
	} else if err != nil {
		return err
	}
	etcdUp := alive(env.pid("ETCD_PID"), "etcd")
	apiUp := alive(env.pid("APISERVER_PID"), "kube-apiserver")
	if controlPlaneMode {
		env["CONTROL_PLANE"] = "true" // kept, so that a restart keeps kube-apiserver's admission plugins
	}
	if etcdUp && apiUp {
		fmt.Printf("kcluster: cluster in %s is already up (apiserver %s)\n", dir, env["APISERVER_URL"])
		return nil
	}
	p, err := loadOrCreatePKI(dir)
	if err != nil {
		return fmt.Errorf("PKI: %w", err)
	}
	for _, k := range []string{"ETCD_CLIENT_PORT", "ETCD_PEER_PORT", "APISERVER_PORT"} {
		if env[k] == "" {
			if env[k], err = freePort(); err != nil {
				return err
			}
		}
	}
	bin := binDir()
	env["KCLUSTER_DIR"] = dir
	env["BIN_DIR"] = bin
	env["KUBECTL"] = filepath.Join(bin, "kubectl")
	env["ETCD_URL"] = "http://127.0.0.1:" + env["ETCD_CLIENT_PORT"]
	env["APISERVER_URL"] = "https://127.0.0.1:" + env["APISERVER_PORT"]
	env["CA_FILE"] = p.path("ca.crt")
	env["ADMIN_KUBECONFIG"] = filepath.Join(dir, "admin.kubeconfig")
	env["TEAM_A_READER_KUBECONFIG"] = filepath.Join(dir, "team-a-reader.kubeconfig")
	env["NO_ACCESS_KUBECONFIG"] = filepath.Join(dir, "no-access.kubeconfig")
	env["NODE_KUBECONFIG"] = filepath.Join(dir, "node-1.kubeconfig")
	env["NODE_NAME"] = "kcp-node-1"
	env["CERT_GATEWAY_KUBECONFIG"] = filepath.Join(dir, "cert-gateway.kubeconfig")
	env["PROXY_KUBECONFIG"] = filepath.Join(dir, "proxy.kubeconfig")

	if !etcdUp {
		peer := "http://127.0.0.1:" + env["ETCD_PEER_PORT"]
		pid, err := start(dir, "etcd", filepath.Join(bin, "etcd"),
			"--name=kcluster",
			"--data-dir="+filepath.Join(dir, "etcd"),
			"--listen-client-urls="+env["ETCD_URL"],
			"--advertise-client-urls="+env["ETCD_URL"],
			"--listen-peer-urls="+peer,
			"--initial-advertise-peer-urls="+peer,
			"--initial-cluster=kcluster="+peer,
			"--quota-backend-bytes=8589934592",
			// A throwaway test cluster: durability across host crashes is not needed,
			// and fsync on a virtual disk would dominate load times.
			"--unsafe-no-fsync=true",
			"--log-level=warn")
		if err != nil {
			return err
		}
		env["ETCD_PID"] = strconv.Itoa(pid)
		if err := env.write(dir); err != nil { // so that "down" can stop a half-started cluster
			return err
		}
		if err := waitReady("etcd", dir, pid, func() bool { return httpOK(env["ETCD_URL"]+"/health", nil) }); err != nil {
			return err
		}
	}
	if !apiUp {
		args := []string{
			"--etcd-servers=" + env["ETCD_URL"],
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			"--secure-port=" + env["APISERVER_PORT"],
			"--tls-cert-file=" + p.path("apiserver.crt"),
			"--tls-private-key-file=" + p.path("apiserver.key"),
			"--client-ca-file=" + p.path("ca.crt"),
			"--token-auth-file=" + p.path("tokens.csv"),
			// As real clusters: kubelets are judged by the Node authorizer
			// (which reads a list's field selector), and NodeRestriction.
			"--authorization-mode=Node,RBAC",
			"--enable-admission-plugins=NodeRestriction",
			"--service-account-key-file=" + p.path("sa.pub"),
			"--service-account-signing-key-file=" + p.path("sa.key"),
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-cluster-ip-range=10.96.0.0/16",
			"--allow-privileged=true",
			// The apiserver listens on loopback only, which the endpoint reconciler
			// refuses to publish as the kubernetes Service endpoint.
			"--endpoint-reconciler-type=none",
			"--feature-gates=APIResponseCompression=true",
		}
		if env["CONTROL_PLANE"] != "true" {
			// Without kube-controller-manager nothing creates the default
			// ServiceAccount that this admission plugin insists on for pods.
			args = append(args, "--disable-admission-plugins=ServiceAccount")
		}
		pid, err := start(dir, "kube-apiserver", filepath.Join(bin, "kube-apiserver"), args...)
		if err != nil {
			return err
		}
		env["APISERVER_PID"] = strconv.Itoa(pid)
		if err := env.write(dir); err != nil {
			return err
		}
		tlsCfg, err := adminTLS(p)
		if err != nil {
			return err
		}
		if err := waitReady("kube-apiserver", dir, pid, func() bool {
			return httpOK(env["APISERVER_URL"]+"/readyz", tlsCfg)
		}); err != nil {
			return err
		}
	}
	if err := writeKubeconfigs(env, p); err != nil {
		return err
	}
	if err := env.write(dir); err != nil {
		return err
	}
	if err := setupRBAC(env["ADMIN_KUBECONFIG"]); err != nil {
		return fmt.Errorf("RBAC setup: %w", err)
	}
	fmt.Printf("kcluster: cluster up in %s\n  apiserver %s (pid %s), etcd %s (pid %s)\n  kubeconfigs: %s, %s, %s\n",
		dir, env["APISERVER_URL"], env["APISERVER_PID"], env["ETCD_URL"], env["ETCD_PID"],
		env["ADMIN_KUBECONFIG"], env["TEAM_A_READER_KUBECONFIG"], env["NO_ACCESS_KUBECONFIG"])
	return nil
}

// start launches a component in its own session (so it outlives kcluster and
// a terminal's Ctrl-C reaches only whoever owns it), logging to DIR/logs.
func start(dir, name, binary string, args ...string) (int, error) {
	if _, err := os.Stat(binary); err != nil {
		return 0, fmt.Errorf("%s not built (%w); run tools/kcluster, which builds it", name, err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "==== %s kcluster starting %s\n", time.Now().Format(time.RFC3339), name)
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	go func() { _ = cmd.Wait() }() // reap it if it dies while we wait for readiness
	return cmd.Process.Pid, nil
}

func waitReady(name, dir string, pid int, ready func() bool) error {
	deadline := time.Now().Add(3 * time.Minute)
	gone := 0
	for time.Now().Before(deadline) {
		if ready() {
			return nil
		}
		// Gone three checks in a row: once, a process just started was
		// seen gone while it went on running (CI, a loaded machine).
		if ok, why := aliveWhy(pid, name); ok {
			gone = 0
		} else if gone++; gone == 3 {
			return fmt.Errorf("%s exited during start-up (%s); last lines of %s:\n%s", name, why,
				filepath.Join(dir, "logs", name+".log"), tail(filepath.Join(dir, "logs", name+".log"), 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after 3 minutes; see %s", name, filepath.Join(dir, "logs", name+".log"))
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func httpOK(url string, tlsCfg *tls.Config) bool {
	c := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func adminTLS(p *pki) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(p.path("admin.crt"), p.path("admin.key"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.caCert)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool}, nil
}

func writeKubeconfigs(env clusterEnv, p *pki) error {
	write := func(path, user string, auth *clientcmdapi.AuthInfo) error {
		cfg := clientcmdapi.NewConfig()
		cfg.Clusters["kcluster"] = &clientcmdapi.Cluster{Server: env["APISERVER_URL"], CertificateAuthority: p.path("ca.crt")}
		cfg.AuthInfos[user] = auth
		cfg.Contexts[user] = &clientcmdapi.Context{Cluster: "kcluster", AuthInfo: user}
		cfg.CurrentContext = user
		return clientcmd.WriteToFile(*cfg, path)
	}
	for _, u := range certUsers {
		if err := write(filepath.Join(env["KCLUSTER_DIR"], u.name+".kubeconfig"), u.name, &clientcmdapi.AuthInfo{
			ClientCertificate: p.path(u.name + ".crt"), ClientKey: p.path(u.name + ".key")}); err != nil {
			return err
		}
	}
	tokens, err := os.ReadFile(p.path("tokens.csv"))
	if err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(tokens)), "\n") {
		f := strings.Split(line, ",")
		key := strings.ToUpper(strings.ReplaceAll(f[1], "-", "_")) + "_KUBECONFIG"
		if err := write(env[key], f[1], &clientcmdapi.AuthInfo{Token: f[0]}); err != nil {
			return err
		}
	}
	return nil
}

// setupRBAC creates namespace team-a and lets team-a-reader get, list and
// watch configmaps and pods there; no-access gets nothing. Idempotent.
func setupRBAC(adminKubeconfig string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", adminKubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ignoreExists := func(err error) error {
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	}
	if err := ignoreExists(ensureNamespace(ctx, cs, "team-a")); err != nil {
		return err
	}
	_, err = cs.RbacV1().Roles("team-a").Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "team-a-reader"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""}, Resources: []string{"configmaps", "pods"},
			Verbs: []string{"get", "list", "watch"},
		}},
	}, metav1.CreateOptions{})
	if err := ignoreExists(err); err != nil {
		return err
	}
	_, err = cs.RbacV1().RoleBindings("team-a").Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "team-a-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "team-a-reader"},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "team-a-reader"}},
	}, metav1.CreateOptions{})
	return ignoreExists(err)
}

func ensureNamespace(ctx context.Context, cs kubernetes.Interface, name string) error {
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	return err
}

var components = map[string]struct{ pidKey, binary string }{
	"apiserver": {"APISERVER_PID", "kube-apiserver"},
	"etcd":      {"ETCD_PID", "etcd"},
}

func cmdDown(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: kcluster down DIR")
	}
	env, err := readEnv(args[0])
	if errors.Is(err, os.ErrNotExist) {
		fmt.Printf("kcluster: no cluster in %s\n", args[0])
		return nil
	} else if err != nil {
		return err
	}
	stopped := stopControlPlane(env)
	for _, name := range []string{"apiserver", "etcd"} { // apiserver first: it needs etcd to drain
		c := components[name]
		if stopProcess(env.pid(c.pidKey), c.binary) {
			stopped++
		}
	}
	fmt.Printf("kcluster: stopped %d process(es) of the cluster in %s\n", stopped, args[0])
	return nil
}

func cmdStop(args []string) error {
	kill := len(args) == 3 && args[2] == "--kill"
	if len(args) != 2 && !kill {
		return errors.New("usage: kcluster stop DIR etcd|apiserver [--kill]")
	}
	c, ok := components[args[1]]
	if !ok {
		return fmt.Errorf("unknown component %q (etcd or apiserver)", args[1])
	}
	env, err := readEnv(args[0])
	if err != nil {
		return err
	}
	pid := env.pid(c.pidKey)
	if kill && alive(pid, c.binary) {
		// A crash: no graceful shutdown, no GOAWAY, connections just die.
		_ = syscall.Kill(pid, syscall.SIGKILL)
		for i := 0; i < 50 && alive(pid, c.binary); i++ {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !stopProcess(pid, c.binary) && !kill {
		fmt.Printf("kcluster: %s was not running\n", args[1])
	}
	return nil
}

// stopProcess sends SIGTERM, waits up to 20 s, then SIGKILLs. It reports
// whether the process was running.
func stopProcess(pid int, binary string) bool {
	if !alive(pid, binary) {
		return false
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 200 && alive(pid, binary); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if alive(pid, binary) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		for i := 0; i < 50 && alive(pid, binary); i++ {
			time.Sleep(100 * time.Millisecond)
		}
	}
	return true
}

func cmdCompact(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: kcluster compact DIR")
	}
	env, err := readEnv(args[0])
	if err != nil {
		return err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{env["ETCD_URL"]}, DialTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := cli.Status(ctx, env["ETCD_URL"])
	if err != nil {
		return err
	}
	rev := st.Header.Revision
	if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		return err
	}
	fmt.Printf("kcluster: compacted etcd at revision %d\n", rev)
	return nil
}
