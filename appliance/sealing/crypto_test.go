package sealing

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// generatedKeys are three 2048-bit keys, made once per test binary: the
// size keeps the tests fast and does not change the format.
var generatedKeys = sync.OnceValues(func() ([3]*Key, error) {
	var keys [3]*Key
	for i := range keys {
		k, err := GenerateKey(2048, time.Hour, "sealed-secret")
		if err != nil {
			return keys, err
		}
		keys[i] = k
	}
	return keys, nil
})

// sealingKeys returns the three test keys; tests seal with the first.
func sealingKeys(t *testing.T) [3]*Key {
	t.Helper()
	keys, err := generatedKeys()
	if err != nil {
		t.Fatalf("generating keys: %v", err)
	}
	return keys
}

func TestParseScope(t *testing.T) {
	tests := []struct {
		in   string
		want Scope
		ok   bool
	}{
		{"", Strict, true},
		{"strict", Strict, true},
		{"namespace-wide", NamespaceWide, true},
		{"cluster-wide", ClusterWide, true},
		{"Cluster-Wide", Strict, false},
		{"cluster", Strict, false},
	}
	for _, tt := range tests {
		got, err := ParseScope(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseScope(%q) = %s, %v", tt.in, got, err)
		}
		if tt.ok && tt.in != "" && got.String() != tt.in {
			t.Errorf("%q reads back as %q", tt.in, got)
		}
	}
}

func TestScopeOf(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		want        Scope
	}{
		{"no annotations is strict", nil, Strict},
		{"namespace-wide", map[string]string{NamespaceWideAnnotation: "true"}, NamespaceWide},
		{"cluster-wide", map[string]string{ClusterWideAnnotation: "true"}, ClusterWide},
		{"cluster-wide wins over namespace-wide", map[string]string{NamespaceWideAnnotation: "true", ClusterWideAnnotation: "true"}, ClusterWide},
		{"only \"true\" counts", map[string]string{ClusterWideAnnotation: "yes", NamespaceWideAnnotation: "True"}, Strict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ScopeOf(tt.annotations); got != tt.want {
				t.Errorf("ScopeOf(%v) = %s, want %s", tt.annotations, got, tt.want)
			}
		})
	}
}

func TestLabel(t *testing.T) {
	tests := []struct {
		scope           Scope
		namespace, name string
		want            string
	}{
		{Strict, "shop", "db", "shop/db"},
		{NamespaceWide, "shop", "db", "shop"},
		{ClusterWide, "shop", "db", ""},
		{Strict, "", "", "/"},
	}
	for _, tt := range tests {
		if got := Label(tt.scope, tt.namespace, tt.name); string(got) != tt.want {
			t.Errorf("Label(%s, %q, %q) = %q, want %q", tt.scope, tt.namespace, tt.name, got, tt.want)
		}
	}
}

func TestEncryptDecryptRoundTrip(t *testing.T) {
	keys := sealingKeys(t)
	pub := &keys[0].Private.PublicKey
	for _, tt := range []struct {
		name      string
		plaintext []byte
		label     []byte
	}{
		{"an empty value", nil, []byte("shop/db")},
		{"a short value", []byte("s3cr3t"), []byte("shop/db")},
		{"a binary value", []byte{0, 0xff, 0x10, 0}, []byte("shop")},
		{"a value larger than the header's 64 KiB", bytes.Repeat([]byte("x"), 1<<17), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Encrypt(rand.Reader, pub, tt.plaintext, tt.label)
			if err != nil {
				t.Fatal(err)
			}
			rsaLen := int(binary.BigEndian.Uint16(c))
			if rsaLen != pub.Size() || len(c) != 2+rsaLen+len(tt.plaintext)+16 {
				t.Errorf("layout: %d bytes with an RSA part of %d, want 2+%d+%d+16", len(c), rsaLen, pub.Size(), len(tt.plaintext))
			}
			// Any key of the list may open it, in any order.
			got, err := Decrypt([]*rsa.PrivateKey{keys[1].Private, keys[0].Private}, c, tt.label)
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			if !bytes.Equal(got, tt.plaintext) {
				t.Errorf("Decrypt = %q, want %q", got, tt.plaintext)
			}
			again, err := Encrypt(rand.Reader, pub, tt.plaintext, tt.label)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(again, c) {
				t.Error("two encryptions of one value are equal: the session key is not fresh")
			}
		})
	}
}

func TestDecryptRejects(t *testing.T) {
	keys := sealingKeys(t)
	mine := []*rsa.PrivateKey{keys[0].Private}
	label := []byte("shop/db")
	good, err := Encrypt(rand.Reader, &keys[0].Private.PublicKey, []byte("s3cr3t"), label)
	if err != nil {
		t.Fatal(err)
	}
	rsaEnd := 2 + int(binary.BigEndian.Uint16(good))
	flip := func(i int) []byte {
		c := bytes.Clone(good)
		c[i] ^= 0x01
		return c
	}
	tests := []struct {
		name       string
		keys       []*rsa.PrivateKey
		ciphertext []byte
		label      []byte
		want       error
	}{
		{"a value sealed for another key", []*rsa.PrivateKey{keys[1].Private, keys[2].Private}, good, label, ErrNoKey},
		{"another label", mine, good, []byte("shop/other"), ErrNoKey},
		{"no label where one was used", mine, good, nil, ErrNoKey},
		{"a flipped byte in the RSA part", mine, flip(2 + 100), label, ErrNoKey},
		{"a flipped byte in the GCM ciphertext", mine, flip(rsaEnd), label, ErrNoKey},
		{"a flipped byte in the GCM tag", mine, flip(len(good) - 1), label, ErrNoKey},
		{"a header that lies about the RSA length", mine, append([]byte{0x00, 0x10}, good[2:]...), label, ErrNoKey},
		{"the GCM part cut off", mine, good[:rsaEnd], label, ErrNoKey},
		{"the GCM tag cut short", mine, good[:len(good)-1], label, ErrNoKey},
		{"no keys", nil, good, label, ErrNoKey},
		{"nothing", mine, nil, label, errTooShort},
		{"one byte", mine, []byte{0x01}, label, errTooShort},
		{"an RSA length past the end", mine, []byte{0xff, 0xff, 1, 2, 3}, label, errTooShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decrypt(tt.keys, tt.ciphertext, tt.label)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decrypt = %q, %v; want %v", got, err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("the error quotes the plaintext: %v", err)
			}
		})
	}
}

func TestEncryptNeedsRandomness(t *testing.T) {
	keys := sealingKeys(t)
	if _, err := Encrypt(bytes.NewReader(make([]byte, 8)), &keys[0].Private.PublicKey, []byte("x"), nil); err == nil {
		t.Error("Encrypt with 8 bytes of randomness succeeded")
	}
}

func TestFingerprint(t *testing.T) {
	keys := sealingKeys(t)
	a, b := Fingerprint(&keys[0].Private.PublicKey), Fingerprint(&keys[1].Private.PublicKey)
	if !strings.HasPrefix(a, "SHA256:") || a == b {
		t.Errorf("fingerprints %q and %q", a, b)
	}
	if keys[0].Fingerprint() != a {
		t.Errorf("Key.Fingerprint = %q, want %q", keys[0].Fingerprint(), a)
	}
}
