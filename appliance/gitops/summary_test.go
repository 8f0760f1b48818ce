package gitops

import "testing"

func TestSyncSummaryString(t *testing.T) {
	for want, s := range map[string]SyncSummary{
		"synced payment-gateway-oslo @3f2c1ab (42 objects, Healthy)":   {Application: "payment-gateway-oslo", Revision: "3f2c1ab9d0e1f2a3b4c5", SyncStatus: "Synced", Health: Healthy, Objects: 42},
		"out of sync a @1234567 (1 object, Progressing)":               {Application: "a", Revision: "1234567", SyncStatus: "OutOfSync", Health: Progressing, Objects: 1},
		"a: ComparisonError: fetching git@h:r.git: connection refused": {Application: "a", SyncStatus: "Unknown", Error: "ComparisonError: fetching git@h:r.git: connection refused"},
		"a @abcdef0: SyncError: revision abcdef0 would prune 9 of 10":  {Application: "a", Revision: "abcdef0123", SyncStatus: "OutOfSync", Error: "SyncError: revision abcdef0 would prune 9 of 10"},
		"a: sync status unknown (0 objects)":                           {Application: "a", SyncStatus: "Unknown"},
	} {
		if got := s.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
	t.Run("a failing Application is one with an error or Degraded", func(t *testing.T) {
		if (SyncSummary{Health: Healthy}).Failing() || !(SyncSummary{Health: Degraded}).Failing() || !(SyncSummary{Error: "x"}).Failing() {
			t.Fatal("Failing() is wrong")
		}
	})
	t.Run("an outcome becomes a summary with its first condition", func(t *testing.T) {
		s := summarize("a", &outcome{revision: "r", syncStatus: "OutOfSync", health: Degraded, resources: make([]resourceStatus, 3),
			conditions: []condition{{Type: "SyncError", Message: "m"}, {Type: "Other", Message: "n"}}})
		if s != (SyncSummary{Application: "a", Revision: "r", SyncStatus: "OutOfSync", Health: Degraded, Objects: 3, Error: "SyncError: m"}) {
			t.Fatalf("%+v", s)
		}
	})
}
