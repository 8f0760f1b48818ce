package gitops

import (
	"fmt"
	"strings"
)

// SyncSummary is the outcome of one reconcile of an Application, for a
// one-line status (systemd's STATUS). It holds no secrets: only what the
// Application's status shows too.
type SyncSummary struct {
	// Application is the Application's name.
	Application string
	// Revision is the commit the outcome is about; empty when the fetch failed.
	Revision string
	// SyncStatus is Synced, OutOfSync or Unknown.
	SyncStatus string
	// Health is the aggregated health; empty when not known.
	Health Health
	// Objects is how many objects the Application manages.
	Objects int
	// Error is the first condition ("ComparisonError: …"); empty when none.
	Error string
	// Deleted is set when the Application was deleted: forget it.
	Deleted bool
}

// Failing reports whether the Application needs a person's attention.
func (s SyncSummary) Failing() bool { return s.Error != "" || s.Health == Degraded }

// String is the line `systemctl status` shows, e.g.
// "synced payment-gateway-oslo @3f2c1ab (42 objects, Healthy)" or
// "payment-gateway-oslo @3f2c1ab: ComparisonError: building …".
func (s SyncSummary) String() string {
	name := s.Application
	if s.Revision != "" {
		rev := s.Revision
		if len(rev) > 7 {
			rev = rev[:7] // git's own abbreviation
		}
		name += " @" + rev
	}
	if s.Error != "" {
		return name + ": " + s.Error
	}
	objects := fmt.Sprintf("%d objects", s.Objects)
	if s.Objects == 1 {
		objects = "1 object"
	}
	detail := " (" + objects
	if s.Health != "" {
		detail += ", " + string(s.Health)
	}
	detail += ")"
	switch s.SyncStatus {
	case "Synced":
		return "synced " + name + detail
	case "OutOfSync":
		return "out of sync " + name + detail
	default:
		return name + ": sync status " + strings.ToLower(s.SyncStatus) + detail
	}
}

// summarize turns a reconcile's outcome into a SyncSummary.
func summarize(name string, out *outcome) SyncSummary {
	s := SyncSummary{Application: name, Revision: out.revision, SyncStatus: out.syncStatus, Health: out.health, Objects: len(out.resources)}
	if len(out.conditions) > 0 {
		s.Error = out.conditions[0].Type + ": " + out.conditions[0].Message
	}
	return s
}
