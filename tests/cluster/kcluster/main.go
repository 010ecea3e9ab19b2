// Command kcluster runs and drives the project's real test cluster: etcd and
// kube-apiserver built from their Go modules, started on loopback with
// generated PKI, plus client-go based load, churn and informer checks.
package main

import (
	"fmt"
	"os"
)

const usage = `kcluster: a real etcd + kube-apiserver on loopback, and client-go tools to drive it.

Usage:
  kcluster up DIR [--control-plane]
                                  start (or restart what is stopped of) the cluster in DIR;
                                  --control-plane: ready for "controlplane" (ServiceAccount admission on)
  kcluster controlplane DIR [--server URL --server-ca FILE] [--nodes N] [--stop]
                                  (re)start kube-controller-manager, kube-scheduler and KWOK with N fake
                                  nodes, talking to URL (a proxy) or to kube-apiserver
  kcluster down DIR               stop the cluster in DIR (keeps its files)
  kcluster stop DIR etcd|apiserver [--kill]
                                  stop one component (for fault tests; --kill: SIGKILL); "up DIR" restarts it
  kcluster compact DIR            compact etcd at its current revision (forces 410 for old watches)
  kcluster load --kubeconfig K --resource configmaps|secrets|pods|widgets --count N
                [--size BYTES] [--namespaces M] [--namespace-prefix P] [--concurrency C]
  kcluster churn --kubeconfig K --resource R --rate OPS_PER_S --duration D [--seed S]
                [--namespaces M] [--namespace-prefix P]
  kcluster informer --kubeconfig K --resource R [--protobuf] [--count C]
                [--verify-against ADMIN_KUBECONFIG] [--watch-list true|false] [--timeout D] [--hold D]
  kcluster slowread --kubeconfig K --path P --pid PID [--pause D] [--max-rss-growth-mb M] [--expect-items N]
                                  read 1 MB, pause, read the rest; bound the RSS of PID
  kcluster faultproxy --listen ADDR --target ADDR [--control ADDR]
                                  a TCP proxy that stalls, drops or resets the path on command
  kcluster faultcheck --kubeconfig PROXY --verify-against ADMIN [--resource R] [--informers N] [--protobuf]
                [--watch-list true|false] [--watchers W]
                                  informers and raw watchers; "check NAME" on stdin compares them with ground truth
  kcluster watchfan --url URL --writer-kubeconfig ADMIN [--kubeconfig K] [--namespace NS] [--name NAME]
                [--h2 N] [--h1 M] [--rate R] [--duration D] [--connect-concurrency C]
                                  N HTTP/2 + M HTTP/1.1 watches of one configmap updated at R/s; delivery latency

  kcluster operator --kubeconfig K [--workers W]
                                  a controller-runtime operator: PodSets of pods, listed by label each reconcile
  kcluster podsets --kubeconfig ADMIN [--sets N] [--replicas R] [--namespace NS]
                                  the operator's scale test: N PodSets, their pods Running, then deleted

Run "kcluster COMMAND -h" for the flags of one command.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "up":
		err = cmdUp(args)
	case "controlplane":
		err = cmdControlPlane(args)
	case "operator":
		err = cmdOperator(args)
	case "podsets":
		err = cmdPodSets(args)
	case "down":
		err = cmdDown(args)
	case "stop":
		err = cmdStop(args)
	case "compact":
		err = cmdCompact(args)
	case "load":
		err = cmdLoad(args)
	case "churn":
		err = cmdChurn(args)
	case "informer":
		err = cmdInformer(args)
	case "slowread":
		err = cmdSlowread(args)
	case "faultproxy":
		err = cmdFaultProxy(args)
	case "faultcheck":
		err = cmdFaultCheck(args)
	case "watchfan":
		err = cmdWatchfan(args)
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "kcluster: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kcluster %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
