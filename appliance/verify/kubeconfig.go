package verify

import (
	"fmt"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ContextName is the kubeconfig context (and cluster and user entry) of the
// local cluster name.
func ContextName(name string) string { return "fjord-" + name }

// mergeKubeconfig adds the admin credentials of a local cluster to the
// user's kubeconfig (KUBECONFIG, else ~/.kube/config, as kubectl resolves
// it) as context fjord-NAME with a cluster and a user of the same name,
// makes it the current context, and returns the file written. Entries of
// that name are replaced; nothing else changes.
func mergeKubeconfig(access clientcmd.ConfigAccess, name, adminKubeconfig string) (string, error) {
	admin, err := clientcmd.LoadFromFile(adminKubeconfig)
	if err != nil {
		return "", fmt.Errorf("reading the cluster's kubeconfig: %w", err)
	}
	ctx := admin.Contexts[admin.CurrentContext]
	if ctx == nil || admin.Clusters[ctx.Cluster] == nil || admin.AuthInfos[ctx.AuthInfo] == nil {
		return "", fmt.Errorf("%s has no usable current context", adminKubeconfig)
	}
	cfg, err := access.GetStartingConfig()
	if err != nil {
		return "", fmt.Errorf("reading kubeconfig: %w", err)
	}
	entry := ContextName(name)
	cluster, user := *admin.Clusters[ctx.Cluster], *admin.AuthInfos[ctx.AuthInfo]
	// An entry is written to the file it came from: these come from the
	// cluster's own kubeconfig and must go to the user's.
	cluster.LocationOfOrigin, user.LocationOfOrigin = "", ""
	if old := cfg.Clusters[entry]; old != nil {
		cluster.LocationOfOrigin = old.LocationOfOrigin
	}
	if old := cfg.AuthInfos[entry]; old != nil {
		user.LocationOfOrigin = old.LocationOfOrigin
	}
	context := clientcmdapi.NewContext()
	context.Cluster, context.AuthInfo = entry, entry
	if old := cfg.Contexts[entry]; old != nil {
		context.LocationOfOrigin = old.LocationOfOrigin
	}
	cfg.Clusters[entry], cfg.AuthInfos[entry], cfg.Contexts[entry] = &cluster, &user, context
	cfg.CurrentContext = entry
	if err := clientcmd.ModifyConfig(access, *cfg, false); err != nil {
		return "", fmt.Errorf("writing kubeconfig: %w", err)
	}
	file := context.LocationOfOrigin
	if file == "" {
		file = access.GetDefaultFilename()
	}
	return file, nil
}

// removeKubeconfig deletes the context, cluster and user fjord-NAME from the
// user's kubeconfig, and the current context when it was that one.
func removeKubeconfig(access clientcmd.ConfigAccess, name string) error {
	cfg, err := access.GetStartingConfig()
	if err != nil {
		return fmt.Errorf("reading kubeconfig: %w", err)
	}
	entry := ContextName(name)
	_, c := cfg.Clusters[entry]
	_, u := cfg.AuthInfos[entry]
	_, x := cfg.Contexts[entry]
	if !c && !u && !x && cfg.CurrentContext != entry {
		return nil
	}
	delete(cfg.Clusters, entry)
	delete(cfg.AuthInfos, entry)
	delete(cfg.Contexts, entry)
	if cfg.CurrentContext == entry {
		cfg.CurrentContext = ""
	}
	if err := clientcmd.ModifyConfig(access, *cfg, false); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	return nil
}
