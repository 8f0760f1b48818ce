package bootstrap

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Kubeconfigs holds the paths of the kubeconfig files of one data dir.
type Kubeconfigs struct {
	// Admin is the cluster-admin kubeconfig users and `fjord kubectl` read.
	Admin             string
	ControllerManager string
	Scheduler         string
	Kubelet           string
	KubeProxy         string
}

// KubeconfigPaths returns where the kubeconfigs of dataDir live.
func KubeconfigPaths(dataDir string) Kubeconfigs {
	dir := filepath.Join(dataDir, "kubeconfigs")
	return Kubeconfigs{
		Admin:             filepath.Join(dataDir, "kubeconfig.yaml"),
		ControllerManager: filepath.Join(dir, "kube-controller-manager.yaml"),
		Scheduler:         filepath.Join(dir, "kube-scheduler.yaml"),
		Kubelet:           filepath.Join(dir, "kubelet.yaml"),
		KubeProxy:         filepath.Join(dir, "kube-proxy.yaml"),
	}
}

// WriteKubeconfigs writes every kubeconfig of dataDir for an API server at
// server (https://host:port). They are rewritten on every start so a changed
// port or address takes effect; all are 0600. The admin kubeconfig embeds its
// credentials so it can be copied off the node; the others point at files.
func WriteKubeconfigs(dataDir, server string, p PKI) (Kubeconfigs, error) {
	k := KubeconfigPaths(dataDir)
	if err := os.MkdirAll(filepath.Dir(k.ControllerManager), 0o700); err != nil {
		return k, fmt.Errorf("creating kubeconfig dir: %w", err)
	}
	files := []struct {
		path  string
		user  string
		pair  KeyPair
		embed bool
	}{
		{k.Admin, "admin", p.Admin, true},
		{k.ControllerManager, "kube-controller-manager", p.ControllerManager, false},
		{k.Scheduler, "kube-scheduler", p.Scheduler, false},
		{k.Kubelet, "kubelet", p.Kubelet, false},
		{k.KubeProxy, "kube-proxy", p.KubeProxy, false},
	}
	for _, f := range files {
		cfg := clientcmdapi.NewConfig()
		cluster := clientcmdapi.NewCluster()
		cluster.Server = server
		authInfo := clientcmdapi.NewAuthInfo()
		if f.embed {
			var err error
			if cluster.CertificateAuthorityData, err = os.ReadFile(p.CA.Cert); err != nil {
				return k, err
			}
			if authInfo.ClientCertificateData, err = os.ReadFile(f.pair.Cert); err != nil {
				return k, err
			}
			if authInfo.ClientKeyData, err = os.ReadFile(f.pair.Key); err != nil {
				return k, err
			}
		} else {
			cluster.CertificateAuthority = p.CA.Cert
			authInfo.ClientCertificate = f.pair.Cert
			authInfo.ClientKey = f.pair.Key
		}
		cfg.Clusters["fjord"] = cluster
		cfg.AuthInfos[f.user] = authInfo
		ctx := clientcmdapi.NewContext()
		ctx.Cluster, ctx.AuthInfo = "fjord", f.user
		cfg.Contexts["fjord"] = ctx
		cfg.CurrentContext = "fjord"
		data, err := clientcmd.Write(*cfg)
		if err != nil {
			return k, fmt.Errorf("encoding kubeconfig %s: %w", f.path, err)
		}
		if err := WriteFileAtomic(f.path, data, 0o600); err != nil {
			return k, err
		}
	}
	return k, nil
}
