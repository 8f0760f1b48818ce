package datastore

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckEtcdSnapshot(t *testing.T) {
	dir := t.TempDir()
	body := []byte(strings.Repeat("p", 4096)) // bbolt pages: a multiple of 512
	sum := sha256.Sum256(body)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o600)
		return p
	}
	t.Run("accepts a snapshot whose trailer is its sha256", func(t *testing.T) {
		if err := CheckEtcdSnapshot(write("good.db", append(append([]byte{}, body...), sum[:]...))); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("refuses a changed snapshot", func(t *testing.T) {
		changed := append(append([]byte{}, body...), sum[:]...)
		changed[100] = 'q'
		if err := CheckEtcdSnapshot(write("changed.db", changed)); err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("refuses a snapshot without a trailer", func(t *testing.T) {
		if err := CheckEtcdSnapshot(write("cut.db", body[:1000])); err == nil || !strings.Contains(err.Error(), "no sha256 trailer") {
			t.Fatalf("err %v", err)
		}
	})
}

func TestSQLitePath(t *testing.T) {
	for endpoint, want := range map[string]string{
		"sqlite://":                    "/data/db/state.db",
		"sqlite://?_journal_mode=WAL":  "/data/db/state.db",
		"sqlite:///srv/kine.db":        "/srv/kine.db",
		"sqlite:///srv/kine.db?cache=": "/srv/kine.db",
	} {
		if got := (Config{Endpoint: endpoint}).SQLitePath("/data"); got != want {
			t.Errorf("%s: %s, want %s", endpoint, got, want)
		}
	}
}

func TestPresentRefusesRemoteDatastores(t *testing.T) {
	if _, err := Present(Config{Endpoint: "postgres://u@h/db"}, t.TempDir()); err == nil || !strings.Contains(err.Error(), "its own tools") {
		t.Fatalf("err %v", err)
	}
	dir := t.TempDir()
	if found, err := Present(Config{}, dir); err != nil || len(found) != 0 {
		t.Fatalf("fresh data dir: %v %v", found, err)
	}
	os.MkdirAll(filepath.Join(dir, "db", "etcd", "member"), 0o700)
	if found, err := Present(Config{}, dir); err != nil || len(found) != 1 {
		t.Fatalf("etcd data dir: %v %v", found, err)
	}
}
