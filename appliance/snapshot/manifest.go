package snapshot

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Format is the bundle format this binary writes and the newest it reads.
const Format = 1

// ManifestName is the bundle's first entry.
const ManifestName = "manifest.json"

// Triggers say why a snapshot was taken; retention prunes only scheduled ones.
const (
	TriggerManual     = "manual"
	TriggerScheduled  = "scheduled"
	TriggerPreUpgrade = "pre-upgrade"
)

// Manifest describes a snapshot: who made it, from what, and the sha256 of
// every part, so a restore can refuse a damaged file before writing anything.
type Manifest struct {
	Format            int    `json:"format"`
	FjordVersion      string `json:"fjordVersion"`
	KubernetesVersion string `json:"kubernetesVersion"`
	// Datastore is the datastore kind the snapshot was taken from (etcd, sqlite).
	Datastore string    `json:"datastore"`
	Name      string    `json:"name"`
	Trigger   string    `json:"trigger"`
	Node      string    `json:"node,omitempty"`
	Created   time.Time `json:"created"`
	Parts     []Part    `json:"parts"`
}

// Part is one file in the bundle.
type Part struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Size is the sum of the parts' sizes (uncompressed).
func (m Manifest) Size() int64 {
	var n int64
	for _, p := range m.Parts {
		n += p.Size
	}
	return n
}

// Part returns the part named name.
func (m Manifest) Part(name string) (Part, bool) {
	for _, p := range m.Parts {
		if p.Name == name {
			return p, true
		}
	}
	return Part{}, false
}

// Build is what the running binary is, to judge whether it can restore a
// snapshot.
type Build struct {
	FjordVersion      string
	KubernetesVersion string
}

// CheckCompatible refuses a snapshot this binary cannot restore: a newer
// bundle format, a newer Fjord (when both versions are releases, vX.Y.Z),
// or a newer Kubernetes minor (its objects may not decode in an older API
// server). Every reason is given at once.
func (m Manifest) CheckCompatible(b Build) error {
	var errs []error
	if m.Format > Format {
		errs = append(errs, fmt.Errorf("it is in snapshot format %d and this fjord reads format %d at most", m.Format, Format))
	}
	if m.Format < 1 {
		errs = append(errs, fmt.Errorf("its manifest has no valid format (%d)", m.Format))
	}
	if newer(m.FjordVersion, b.FjordVersion, 3) {
		errs = append(errs, fmt.Errorf("it was taken by fjord %s, newer than this fjord %s", m.FjordVersion, b.FjordVersion))
	}
	if newer(m.KubernetesVersion, b.KubernetesVersion, 2) {
		errs = append(errs, fmt.Errorf("it holds Kubernetes %s objects, newer than this fjord's Kubernetes %s", m.KubernetesVersion, b.KubernetesVersion))
	}
	if len(errs) > 0 {
		return fmt.Errorf("this fjord cannot restore it; use the fjord it was taken with (%s) or a newer one: %w", m.FjordVersion, errors.Join(errs...))
	}
	return nil
}

// newer reports whether version a is newer than b in their first n numeric
// fields; false when either is not a vX.Y.Z version (a development build).
func newer(a, b string, n int) bool {
	va, oka := parseVersion(a)
	vb, okb := parseVersion(b)
	if !oka || !okb {
		return false
	}
	for i := range n {
		if va[i] != vb[i] {
			return va[i] > vb[i]
		}
	}
	return false
}

func parseVersion(s string) ([3]int, bool) {
	var v [3]int
	s, ok := strings.CutPrefix(s, "v")
	if !ok {
		return v, false
	}
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		s = s[:i]
	}
	fields := strings.Split(s, ".")
	if len(fields) != 3 {
		return v, false
	}
	for i, f := range fields {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return v, false
		}
		v[i] = n
	}
	return v, true
}
