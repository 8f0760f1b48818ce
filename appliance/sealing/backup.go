package sealing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// keySelector selects the usable key Secrets (upstream skips keys labelled
// anything but active, e.g. "compromised").
var keySelector = KeyLabel + "=" + keyActive

// ListKeys reads every active key Secret from the cluster. Secrets that do
// not parse are returned as errors beside the keys that do.
func ListKeys(ctx context.Context, kube kubernetes.Interface) ([]*Key, []error, error) {
	list, err := kube.CoreV1().Secrets(KeyNamespace).List(ctx, metav1.ListOptions{LabelSelector: keySelector})
	if err != nil {
		return nil, nil, fmt.Errorf("listing sealing keys: %w", err)
	}
	var keys []*Key
	var bad []error
	for i := range list.Items {
		k, err := ParseKeySecret(&list.Items[i])
		if err != nil {
			bad = append(bad, err)
			continue
		}
		keys = append(keys, k)
	}
	return keys, bad, nil
}

// ExportKeys writes every key Secret of the cluster as a v1 List, the same
// shape as upstream's documented backup, to a new file at path (0600).
func ExportKeys(ctx context.Context, kube kubernetes.Interface, path string) (int, error) {
	list, err := kube.CoreV1().Secrets(KeyNamespace).List(ctx, metav1.ListOptions{LabelSelector: KeyLabel})
	if err != nil {
		return 0, fmt.Errorf("listing sealing keys: %w", err)
	}
	if len(list.Items) == 0 {
		return 0, errors.New("the cluster has no sealing keys")
	}
	out := &corev1.List{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}}
	slices.SortFunc(list.Items, func(a, b corev1.Secret) int { return strings.Compare(a.Name, b.Name) })
	for i := range list.Items {
		s := &list.Items[i]
		clean := &corev1.Secret{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, Labels: s.Labels,
				Annotations: s.Annotations, CreationTimestamp: s.CreationTimestamp},
			Type: s.Type,
			Data: s.Data,
		}
		out.Items = append(out.Items, runtime.RawExtension{Object: clean})
	}
	b, err := yaml.Marshal(out)
	if err != nil {
		return 0, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("creating the backup: %w", err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path) // no half a backup of private keys
		return 0, fmt.Errorf("writing %s: %w", path, err)
	}
	return len(out.Items), nil
}

// ReadKeyFile reads a key backup: YAML or JSON, one or more documents, each
// a Secret or a List of Secrets. Every Secret must hold a valid key.
func ReadKeyFile(path string) ([]*corev1.Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading sealing keys: %w", err)
	}
	secrets, err := parseKeyDocs(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return secrets, nil
}

func parseKeyDocs(b []byte) ([]*corev1.Secret, error) {
	secrets, err := ReadSecrets(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	for i, s := range secrets {
		if _, err := ParseKeySecret(s); err != nil {
			return nil, fmt.Errorf("Secret %d: %w", i+1, err)
		}
	}
	return secrets, nil
}

// ImportKeys stores the keys of secrets the cluster does not have yet (in
// any state: a key relabelled compromised is not brought back), in
// kube-system, under their own names when free and with their own label
// value. It returns how many it added.
func ImportKeys(ctx context.Context, kube kubernetes.Interface, secrets []*corev1.Secret) (int, error) {
	list, err := kube.CoreV1().Secrets(KeyNamespace).List(ctx, metav1.ListOptions{LabelSelector: KeyLabel})
	if err != nil {
		return 0, fmt.Errorf("listing sealing keys: %w", err)
	}
	known := map[string]bool{}
	for i := range list.Items {
		if k, err := ParseKeySecret(&list.Items[i]); err == nil {
			known[k.Fingerprint()] = true
		}
	}
	added := 0
	for _, s := range secrets {
		k, err := ParseKeySecret(s)
		if err != nil {
			return added, err
		}
		if known[k.Fingerprint()] {
			continue
		}
		known[k.Fingerprint()] = true
		in := KeySecret(k)
		in.Name, in.GenerateName = s.Name, ""
		if in.Name == "" {
			in.GenerateName = KeyPrefix
		}
		in.Annotations = s.Annotations
		for l, v := range s.Labels {
			in.Labels[l] = v // KeyLabel included: "compromised" stays so
		}
		_, err = kube.CoreV1().Secrets(KeyNamespace).Create(ctx, in, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			in.Name, in.GenerateName = "", KeyPrefix
			_, err = kube.CoreV1().Secrets(KeyNamespace).Create(ctx, in, metav1.CreateOptions{})
		}
		if err != nil {
			return added, fmt.Errorf("storing key %s: %w", k.Fingerprint(), err)
		}
		added++
	}
	return added, nil
}
