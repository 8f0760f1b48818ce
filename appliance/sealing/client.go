package sealing

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// FetchCert gets the active certificate the way kubeseal does: through the
// API server's proxy to the sealed-secrets-controller Service.
func FetchCert(ctx context.Context, kube kubernetes.Interface) ([]byte, error) {
	b, err := kube.CoreV1().Services(KeyNamespace).ProxyGet("http", ServiceName, portName, "/v1/cert.pem", nil).DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("fetching the certificate from %s/%s: %w", KeyNamespace, ServiceName, err)
	}
	return b, nil
}

// SealOptions are kubeseal's knobs.
type SealOptions struct {
	Scope Scope
	// Name and Namespace override the input Secret's.
	Name, Namespace string
}

// ReadSecrets reads Secrets from YAML or JSON: one or more documents,
// each a Secret or a List of Secrets. Errors name the document and the
// item, never their content.
func ReadSecrets(r io.Reader) ([]*corev1.Secret, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var out []*corev1.Secret
	for doc := 1; ; doc++ {
		var msg json.RawMessage
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("document %d is not YAML or JSON", doc)
		}
		if len(bytes.TrimSpace(msg)) == 0 || string(msg) == "null" {
			continue
		}
		var head struct {
			Kind  string            `json:"kind"`
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(msg, &head); err != nil {
			return nil, fmt.Errorf("document %d is not an object", doc)
		}
		items := []json.RawMessage{msg}
		if strings.HasSuffix(head.Kind, "List") {
			items = head.Items
		} else if head.Kind != "Secret" {
			return nil, fmt.Errorf("document %d is a %q, not a Secret or a List", doc, head.Kind)
		}
		for i, item := range items {
			s := &corev1.Secret{}
			if err := json.Unmarshal(item, s); err != nil || s.Kind != "Secret" {
				return nil, fmt.Errorf("document %d, item %d is not a Secret", doc, i+1)
			}
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no Secret in the input")
	}
	return out, nil
}

// SealSecrets seals every Secret for pub, as kubeseal does.
func SealSecrets(pub *rsa.PublicKey, secrets []*corev1.Secret, o SealOptions) ([]*SealedSecret, error) {
	var out []*SealedSecret
	for _, s := range secrets {
		s = s.DeepCopy()
		if len(s.Data) == 0 && len(s.StringData) == 0 {
			// kubeseal --allow-empty-data makes such SealedSecrets; Fjord's
			// controller refuses them (an empty one in Git is most often a
			// mistake), so they are not made here either.
			return nil, fmt.Errorf("Secret %q has no data: nothing to seal", s.Name)
		}
		if o.Name != "" {
			s.Name = o.Name
		}
		if o.Namespace != "" {
			s.Namespace = o.Namespace
		}
		ss, err := Seal(rand.Reader, pub, s, o.Scope)
		if err != nil {
			return nil, fmt.Errorf("Secret %q: %w", s.Name, err)
		}
		out = append(out, ss)
	}
	return out, nil
}

// Merge adds what update seals to orig: its values, template labels,
// annotations and data (kubeseal --merge-into).
func Merge(orig, update *SealedSecret) {
	if orig.Spec.EncryptedData == nil {
		orig.Spec.EncryptedData = map[string]string{}
	}
	maps.Copy(orig.Spec.EncryptedData, update.Spec.EncryptedData)
	if len(update.Spec.Template.Labels) > 0 {
		if orig.Spec.Template.Labels == nil {
			orig.Spec.Template.Labels = map[string]string{}
		}
		maps.Copy(orig.Spec.Template.Labels, update.Spec.Template.Labels)
	}
	if len(update.Spec.Template.Annotations) > 0 {
		if orig.Spec.Template.Annotations == nil {
			orig.Spec.Template.Annotations = map[string]string{}
		}
		maps.Copy(orig.Spec.Template.Annotations, update.Spec.Template.Annotations)
	}
	if len(update.Spec.Template.Data) > 0 {
		if orig.Spec.Template.Data == nil {
			orig.Spec.Template.Data = map[string]*string{}
		}
		maps.Copy(orig.Spec.Template.Data, update.Spec.Template.Data)
	}
}

// ReadSealedSecret reads one SealedSecret from YAML or JSON.
func ReadSealedSecret(b []byte) (*SealedSecret, error) {
	ss := &SealedSecret{}
	if err := utilyaml.Unmarshal(b, ss); err != nil {
		return nil, fmt.Errorf("not a SealedSecret: %w", err)
	}
	if ss.Kind != Kind {
		return nil, fmt.Errorf("not a SealedSecret: kind %q", ss.Kind)
	}
	return ss, nil
}

// Encode writes ss as YAML or JSON (kubeseal's two formats).
func Encode(w io.Writer, ss *SealedSecret, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(ss)
	case "yaml", "":
		b, err := yaml.Marshal(ss)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return fmt.Errorf("output format %q: must be yaml or json", format)
}
