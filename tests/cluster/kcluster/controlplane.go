package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// The control plane beside kube-apiserver: kube-controller-manager,
// kube-scheduler and KWOK (which plays the kubelets of fake nodes: it marks
// them Ready, renews their leases, and moves their pods through their
// lifecycle). Each talks to the server it is given, kube-apiserver or a proxy
// in front of it, with its own identity, as in a real cluster.

// controlPlane lists its components in start order; kwok last, so nodes turn
// Ready once the controllers that watch them are up.
var controlPlane = []struct{ name, pidKey, cert string }{
	{"kube-controller-manager", "CONTROLLER_MANAGER_PID", "controller-manager"},
	{"kube-scheduler", "SCHEDULER_PID", "scheduler"},
	{"kwok", "KWOK_PID", "admin"}, // KWOK writes every node's and pod's status: an administrator
}

// kwokNodeAnnotation marks the nodes KWOK manages (and only those).
const kwokNodeAnnotation = "kwok.x-k8s.io/node"

func cmdControlPlane(args []string) error {
	fs := flag.NewFlagSet("controlplane", flag.ExitOnError)
	server := fs.String("server", "", "URL the components talk to (default: the cluster's kube-apiserver)")
	serverCA := fs.String("server-ca", "", "CA of --server's serving certificate (default: the cluster's CA)")
	nodes := fs.Int("nodes", 3, "fake nodes KWOK runs (kwok-node-0 ...)")
	stop := fs.Bool("stop", false, "stop the components and exit")
	if len(args) < 1 || strings.HasPrefix(args[0], "-") {
		return errors.New("usage: kcluster controlplane DIR [--server URL --server-ca FILE] [--nodes N] [--stop]")
	}
	dir, err := filepath.Abs(args[0])
	if err != nil {
		return err
	}
	_ = fs.Parse(args[1:])
	env, err := readEnv(dir)
	if err != nil {
		return fmt.Errorf("no cluster in %s (kcluster up %s first): %w", dir, dir, err)
	}
	stopped := stopControlPlane(env)
	if *stop {
		fmt.Printf("kcluster: stopped %d control-plane process(es) in %s\n", stopped, dir)
		return nil
	}
	if env["CONTROL_PLANE"] != "true" {
		return fmt.Errorf("the cluster in %s was started without --control-plane (kube-apiserver then refuses no pod without a service account, and the shared test cluster stays free of controllers' objects)", dir)
	}
	if *server == "" {
		*server, *serverCA = env["APISERVER_URL"], env["CA_FILE"]
	}
	if *serverCA == "" {
		return errors.New("--server-ca is needed with --server")
	}
	p, err := loadOrCreatePKI(dir)
	if err != nil {
		return err
	}
	cpDir := filepath.Join(dir, "controlplane")
	if err := os.MkdirAll(cpDir, 0o755); err != nil {
		return err
	}
	kubeconfigs := map[string]string{}
	for _, c := range controlPlane {
		kubeconfigs[c.name] = filepath.Join(cpDir, c.name+".kubeconfig")
		if err := writeClientKubeconfig(kubeconfigs[c.name], *server, *serverCA, p, c.cert); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := ensureKwokNodes(ctx, env["ADMIN_KUBECONFIG"], *nodes); err != nil {
		return fmt.Errorf("fake nodes: %w", err)
	}
	bin := binDir()
	for _, c := range controlPlane {
		port, err := freePort()
		if err != nil {
			return err
		}
		pid, err := start(dir, c.name, filepath.Join(bin, c.name), controlPlaneArgs(c.name, kubeconfigs[c.name], port, p, bin)...)
		if err != nil {
			return err
		}
		env[c.pidKey] = strconv.Itoa(pid)
		env[strings.TrimSuffix(c.pidKey, "_PID")+"_KUBECONFIG"] = kubeconfigs[c.name]
	}
	// For clients beside the control plane (an operator): the admin, through the same server.
	env["CONTROL_PLANE_ADMIN_KUBECONFIG"] = filepath.Join(cpDir, "admin.kubeconfig")
	if err := writeClientKubeconfig(env["CONTROL_PLANE_ADMIN_KUBECONFIG"], *server, *serverCA, p, "admin"); err != nil {
		return err
	}
	env["CONTROL_PLANE_SERVER"] = *server
	if err := env.write(dir); err != nil {
		return err
	}
	if err := waitControlPlane(ctx, dir, env, *nodes); err != nil {
		return err
	}
	fmt.Printf("kcluster: control plane up in %s through %s: kube-controller-manager (pid %s), kube-scheduler (pid %s), kwok (pid %s) with %d nodes\n",
		dir, *server, env["CONTROLLER_MANAGER_PID"], env["SCHEDULER_PID"], env["KWOK_PID"], *nodes)
	return nil
}

// controlPlaneArgs are each component's flags: real defaults (client-go's
// QPS, leader election, watch-list and protobuf as they ship), plus what a
// cluster on loopback needs.
func controlPlaneArgs(name, kubeconfig, port string, p *pki, bin string) []string {
	// Both controllers: their server, delegated authentication and
	// authorization of their own HTTPS endpoint, leader election.
	controllerArgs := []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig, "--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1", "--secure-port=" + port,
		"--leader-elect=true",
		"--v=2",
	}
	switch name {
	case "kube-controller-manager":
		return append(controllerArgs,
			// Each controller acts as its own service account (as kubeadm sets it up),
			// so the proxy sees bearer tokens, not only the manager's certificate.
			"--use-service-account-credentials=true",
			"--service-account-private-key-file="+p.path("sa.key"),
			// Else the root-CA publisher writes the CA of whatever server the
			// kubeconfig names (the proxy's) into every namespace.
			"--root-ca-file="+p.path("ca.crt"),
			"--flex-volume-plugin-dir="+filepath.Join(filepath.Dir(kubeconfig), "flexvolume"), // not the host's
			"--cluster-signing-cert-file="+p.path("ca.crt"),
			"--cluster-signing-key-file="+p.path("ca.key"))
	case "kube-scheduler":
		return controllerArgs
	default: // kwok
		return []string{
			"--kubeconfig=" + kubeconfig,
			"--config=" + filepath.Join(bin, "kwok-stages.yaml"),
			"--manage-nodes-with-annotation-selector=" + kwokNodeAnnotation + "=fake",
			"--server-address=127.0.0.1:" + port,
			"--cidr=10.244.0.1/16", // room for the pod IPs of a big scenario
			"--node-lease-duration-seconds=40",
		}
	}
}

// writeClientKubeconfig writes a kubeconfig for SERVER with pki/CERT.crt as
// the client certificate.
func writeClientKubeconfig(path, server, serverCA string, p *pki, cert string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["server"] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: serverCA}
	cfg.AuthInfos[cert] = &clientcmdapi.AuthInfo{ClientCertificate: p.path(cert + ".crt"), ClientKey: p.path(cert + ".key")}
	cfg.Contexts["default"] = &clientcmdapi.Context{Cluster: "server", AuthInfo: cert}
	cfg.CurrentContext = "default"
	return clientcmd.WriteToFile(*cfg, path)
}

// ensureKwokNodes creates kwok-node-0..N-1 (KWOK's annotation, its taint-free
// default node shape left to its node-initialize stage).
func ensureKwokNodes(ctx context.Context, adminKubeconfig string, n int) error {
	cs, err := adminClient(adminKubeconfig)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name:        fmt.Sprintf("kwok-node-%d", i),
			Annotations: map[string]string{kwokNodeAnnotation: "fake"},
			Labels:      map[string]string{"type": "kwok", "kubernetes.io/hostname": fmt.Sprintf("kwok-node-%d", i)},
		}, Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi"),
			corev1.ResourcePods: resource.MustParse("1000"),
		}}}
		node.Status.Capacity = node.Status.Allocatable
		if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return nil
}

func adminClient(kubeconfig string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 200, 400
	return kubernetes.NewForConfig(cfg)
}

// waitControlPlane waits until both controllers hold their leader leases
// and every fake node is Ready, failing early when a component exits.
func waitControlPlane(ctx context.Context, dir string, env clusterEnv, nodes int) error {
	cs, err := adminClient(env["ADMIN_KUBECONFIG"])
	if err != nil {
		return err
	}
	started := time.Now()
	for {
		for _, c := range controlPlane {
			if ok, why := aliveWhy(env.pid(c.pidKey), c.name); !ok {
				log := filepath.Join(dir, "logs", c.name+".log")
				return fmt.Errorf("%s exited (%s); last lines of %s:\n%s", c.name, why, log, tail(log, 20))
			}
		}
		missing := controlPlaneNotReady(ctx, cs, started, nodes)
		if missing == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("control plane not ready: %s", missing)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// controlPlaneNotReady says what is not ready yet, or "" when all is: each
// leader lease renewed since STARTED (a lease from before a restart does not
// count), and NODES nodes Ready.
func controlPlaneNotReady(ctx context.Context, cs *kubernetes.Clientset, started time.Time, nodes int) string {
	for _, lease := range []string{"kube-controller-manager", "kube-scheduler"} {
		l, err := cs.CoordinationV1().Leases("kube-system").Get(ctx, lease, metav1.GetOptions{})
		if err != nil || l.Spec.RenewTime == nil || l.Spec.RenewTime.Time.Before(started.Add(-time.Second)) {
			return "leader lease " + lease
		}
	}
	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "type=kwok"})
	if err != nil {
		return err.Error()
	}
	ready := 0
	for _, n := range list.Items {
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	if ready < nodes {
		return fmt.Sprintf("%d of %d nodes Ready", ready, nodes)
	}
	return ""
}

// stopControlPlane stops whichever components run; it returns how many did.
func stopControlPlane(env clusterEnv) int {
	stopped := 0
	for i := len(controlPlane) - 1; i >= 0; i-- {
		if stopProcess(env.pid(controlPlane[i].pidKey), controlPlane[i].name) {
			stopped++
		}
	}
	return stopped
}
