// Package sealing is Fjord's in-process sealed-secrets controller: the
// ciphertext format, keys and API of Bitnami's sealed-secrets, so that
// SealedSecrets made by kubeseal decrypt here and the other way round.
package sealing

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/ssh"
)

// Scope is what a ciphertext is bound to: the OAEP label it was sealed with.
type Scope int

// The three scopes of sealed-secrets. Strict binds a value to one
// namespace and name, NamespaceWide to a namespace, ClusterWide to nothing.
const (
	Strict Scope = iota
	NamespaceWide
	ClusterWide
)

// Annotations and labels shared with upstream sealed-secrets.
const (
	annotationPrefix        = "sealedsecrets.bitnami.com/"
	NamespaceWideAnnotation = annotationPrefix + "namespace-wide"
	ClusterWideAnnotation   = annotationPrefix + "cluster-wide"
	// ManagedAnnotation on an existing Secret lets a SealedSecret take it over.
	ManagedAnnotation = annotationPrefix + "managed"
	// PatchAnnotation on an existing Secret merges the unsealed keys into it.
	PatchAnnotation = annotationPrefix + "patch"
	// SkipOwnerAnnotation in a template leaves the Secret without an owner.
	SkipOwnerAnnotation = annotationPrefix + "skip-set-owner-references"
	// KeyLabel marks the key Secrets; its value is "active" for usable keys.
	KeyLabel = "sealedsecrets.bitnami.com/sealed-secrets-key"
)

// ParseScope reads kubeseal's --scope words; "" is Strict.
func ParseScope(s string) (Scope, error) {
	switch s {
	case "", "strict":
		return Strict, nil
	case "namespace-wide":
		return NamespaceWide, nil
	case "cluster-wide":
		return ClusterWide, nil
	}
	return Strict, fmt.Errorf("scope %q: must be one of strict, namespace-wide, cluster-wide", s)
}

func (s Scope) String() string {
	switch s {
	case Strict:
		return "strict"
	case NamespaceWide:
		return "namespace-wide"
	case ClusterWide:
		return "cluster-wide"
	}
	return fmt.Sprintf("scope(%d)", int(s))
}

// ScopeOf reads the scope from an object's annotations; cluster-wide wins.
func ScopeOf(annotations map[string]string) Scope {
	switch {
	case annotations[ClusterWideAnnotation] == "true":
		return ClusterWide
	case annotations[NamespaceWideAnnotation] == "true":
		return NamespaceWide
	}
	return Strict
}

// annotate sets the scope annotations for s on ann (which may be nil).
func (s Scope) annotate(ann map[string]string) map[string]string {
	if ann == nil {
		ann = map[string]string{}
	}
	delete(ann, NamespaceWideAnnotation)
	delete(ann, ClusterWideAnnotation)
	switch s {
	case NamespaceWide:
		ann[NamespaceWideAnnotation] = "true"
	case ClusterWide:
		ann[ClusterWideAnnotation] = "true"
	}
	return ann
}

// Label is the OAEP label a value of scope s is sealed with.
func Label(s Scope, namespace, name string) []byte {
	switch s {
	case ClusterWide:
		return []byte{}
	case NamespaceWide:
		return []byte(namespace)
	}
	return []byte(namespace + "/" + name)
}

const sessionKeySize = 32 // AES-256

// ErrNoKey means none of the keys opened a ciphertext: it was sealed for
// another key, another scope or name, or it was tampered with.
var ErrNoKey = errors.New("no key could decrypt secret")

// errTooShort means a ciphertext cannot even hold its own header.
var errTooShort = errors.New("ciphertext too short")

// Encrypt seals plaintext for pub: a fresh AES-256-GCM session key per
// value, itself sealed with RSA-OAEP(SHA-256, label). The output is
//
//	uint16 big-endian len(rsa) ‖ rsa ciphertext ‖ gcm ciphertext+tag
//
// which is sealed-secrets' format byte for byte.
func Encrypt(rnd io.Reader, pub *rsa.PublicKey, plaintext, label []byte) ([]byte, error) {
	session := make([]byte, sessionKeySize)
	if _, err := io.ReadFull(rnd, session); err != nil {
		return nil, err
	}
	wrapped, err := rsa.EncryptOAEP(sha256.New(), rnd, pub, session, label)
	if err != nil {
		return nil, err
	}
	if len(wrapped) > 0xffff {
		return nil, fmt.Errorf("RSA ciphertext of %d bytes does not fit the header", len(wrapped))
	}
	gcm, err := newGCM(session)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 2, 2+len(wrapped)+len(plaintext)+gcm.Overhead())
	binary.BigEndian.PutUint16(out, uint16(len(wrapped)))
	out = append(out, wrapped...)
	// Every session key seals exactly one message, so a zero nonce is safe.
	return gcm.Seal(out, make([]byte, gcm.NonceSize()), plaintext, nil), nil
}

// Decrypt opens a ciphertext made by Encrypt with any of keys.
func Decrypt(keys []*rsa.PrivateKey, ciphertext, label []byte) ([]byte, error) {
	if len(ciphertext) < 2 {
		return nil, errTooShort
	}
	n := int(binary.BigEndian.Uint16(ciphertext))
	if len(ciphertext) < 2+n {
		return nil, errTooShort
	}
	wrapped, sealed := ciphertext[2:2+n], ciphertext[2+n:]
	for _, k := range keys {
		session, err := rsa.DecryptOAEP(sha256.New(), nil, k, wrapped, label)
		if err != nil {
			continue
		}
		gcm, err := newGCM(session)
		if err != nil {
			continue
		}
		if plain, err := gcm.Open(nil, make([]byte, gcm.NonceSize()), sealed, nil); err == nil {
			return plain, nil
		}
	}
	return nil, ErrNoKey
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Fingerprint names a public key the way sealed-secrets does (OpenSSH's
// SHA256 fingerprint), so logs and metrics here and there agree.
func Fingerprint(pub *rsa.PublicKey) string {
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		return ""
	}
	return ssh.FingerprintSHA256(k)
}
