package systemd

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
)

type entry struct {
	msg  string
	pri  journal.Priority
	vars map[string]string
}

// recording returns a JournalHandler whose entries are kept, as journald
// would receive them (journald cannot run here: no systemd as PID 1).
func recording(level slog.Level) (*JournalHandler, *[]entry) {
	var got []entry
	h := NewJournalHandler(&slog.HandlerOptions{Level: level})
	h.send = func(msg string, p journal.Priority, vars map[string]string) error {
		got = append(got, entry{msg, p, vars})
		return nil
	}
	return h, &got
}

func TestJournalHandler(t *testing.T) {
	t.Run("attributes become fields, so journalctl APPLICATION=NAME selects", func(t *testing.T) {
		h, got := recording(slog.LevelInfo)
		log := slog.New(h).With("component", "gitops")
		log.Warn("sync failed", "application", "payment-gateway-oslo", "revision", "3f2c1ab", "reason", "namespace \"payments\" does not exist")
		if len(*got) != 1 {
			t.Fatalf("%d entries", len(*got))
		}
		e := (*got)[0]
		want := map[string]string{"COMPONENT": "gitops", "APPLICATION": "payment-gateway-oslo", "REVISION": "3f2c1ab",
			"REASON": `namespace "payments" does not exist`, "SYSLOG_IDENTIFIER": "fjord"}
		for k, v := range want {
			if e.vars[k] != v {
				t.Errorf("%s = %q, want %q", k, e.vars[k], v)
			}
		}
		if e.pri != journal.PriWarning {
			t.Errorf("priority %d, want warning", e.pri)
		}
		if wantMsg := `sync failed component=gitops application=payment-gateway-oslo revision=3f2c1ab reason="namespace \"payments\" does not exist"`; e.msg != wantMsg {
			t.Errorf("MESSAGE %q\nwant    %q", e.msg, wantMsg)
		}
		if !strings.HasSuffix(e.vars["CODE_FILE"], "journal_test.go") || e.vars["CODE_LINE"] == "" {
			t.Errorf("CODE_FILE %q CODE_LINE %q", e.vars["CODE_FILE"], e.vars["CODE_LINE"])
		}
	})
	t.Run("groups prefix field names", func(t *testing.T) {
		h, got := recording(slog.LevelInfo)
		slog.New(h).WithGroup("sync").Info("done", slog.Group("objects", "applied", 3), "app", "a")
		e := (*got)[0]
		if e.vars["SYNC_OBJECTS_APPLIED"] != "3" || e.vars["SYNC_APP"] != "a" {
			t.Fatalf("fields %v", e.vars)
		}
		if e.msg != "done sync.objects.applied=3 sync.app=a" {
			t.Fatalf("MESSAGE %q", e.msg)
		}
	})
	t.Run("levels map to syslog priorities and below the level nothing is sent", func(t *testing.T) {
		h, got := recording(slog.LevelInfo)
		log := slog.New(h)
		log.Debug("hidden")
		log.Info("i")
		log.Error("e", "err", errors.New("boom"))
		if len(*got) != 2 {
			t.Fatalf("%d entries, want 2", len(*got))
		}
		if (*got)[0].pri != journal.PriInfo || (*got)[1].pri != journal.PriErr {
			t.Fatalf("priorities %d %d", (*got)[0].pri, (*got)[1].pri)
		}
		if (*got)[1].vars["ERR"] != "boom" {
			t.Fatalf("ERR = %q", (*got)[1].vars["ERR"])
		}
	})
	t.Run("an attribute cannot overwrite the journal's own fields", func(t *testing.T) {
		h, got := recording(slog.LevelInfo)
		slog.New(h).Info("hello", "message", "mine", "priority", "high", "_hidden", 1, "9lives", 2, "a-b.c", 3)
		e := (*got)[0]
		if e.msg != "hello message=mine priority=high _hidden=1 9lives=2 a-b.c=3" {
			t.Fatalf("MESSAGE %q", e.msg)
		}
		for k, v := range map[string]string{"FJORD_MESSAGE": "mine", "FJORD_PRIORITY": "high", "FJORD_HIDDEN": "1", "FJORD_9LIVES": "2", "A_B_C": "3"} {
			if e.vars[k] != v {
				t.Errorf("%s = %q, want %q (fields %v)", k, e.vars[k], v, e.vars)
			}
		}
		if _, ok := e.vars["MESSAGE"]; ok {
			t.Error("MESSAGE was set as a field")
		}
	})
	t.Run("a record the journal refuses goes to stderr", func(t *testing.T) {
		var buf bytes.Buffer
		h := NewJournalHandler(nil)
		h.fallback = slog.NewTextHandler(&buf, nil)
		h.send = func(string, journal.Priority, map[string]string) error { return errors.New("no journald") }
		slog.New(h).With("component", "x").Info("still logged")
		if !strings.Contains(buf.String(), "still logged") || !strings.Contains(buf.String(), "component=x") {
			t.Fatalf("stderr: %q", buf.String())
		}
	})
}

func TestFieldName(t *testing.T) {
	for key, want := range map[string]string{
		"application":           "APPLICATION",
		"data-dir":              "DATA_DIR",
		"":                      "FJORD_",
		strings.Repeat("k", 70): strings.Repeat("K", 64),
	} {
		if got := fieldName(key); got != want {
			t.Errorf("fieldName(%q) = %q, want %q", key, got, want)
		}
	}
}
