package localpath

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "accepts the defaults", cfg: Default()},
		{name: "accepts an absolute path", cfg: Config{LocalStoragePath: "/srv/volumes"}},
		{name: "refuses a relative path", cfg: Config{LocalStoragePath: "volumes"}, wantErr: "local-storage-path: \"volumes\" must be an absolute path"},
		{name: "refuses the root directory", cfg: Config{LocalStoragePath: "//"}, wantErr: "local-storage-path: must not be the root directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Validate() = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestInit(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	t.Run("makes <data-dir>/storage with mode 0700 by default", func(t *testing.T) {
		data := t.TempDir()
		if err := New(Default(), Runtime{DataDir: data, Log: log}).Init(t.Context()); err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(filepath.Join(data, "storage"))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o700 {
			t.Errorf("mode = %s, want 0700", info.Mode())
		}
	})
	t.Run("uses local-storage-path when set", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a", "b")
		if err := New(Config{LocalStoragePath: dir}, Runtime{DataDir: t.TempDir(), Log: log}).Init(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dir); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("fails naming the path when it is not writable", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root writes anywhere")
		}
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
		err := New(Config{LocalStoragePath: dir}, Runtime{Log: log}).Init(t.Context())
		if err == nil || !strings.Contains(err.Error(), dir) {
			t.Errorf("Init() = %v, want an error naming %s", err, dir)
		}
	})
	t.Run("fails naming the path when it is a file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		err := New(Config{LocalStoragePath: file}, Runtime{Log: log}).Init(t.Context())
		if err == nil || !strings.Contains(err.Error(), file) {
			t.Errorf("Init() = %v, want an error naming %s", err, file)
		}
	})
	t.Run("does nothing when disabled", func(t *testing.T) {
		data := t.TempDir()
		p := New(Config{DisableLocalStorage: true}, Runtime{DataDir: data, Log: log})
		for _, step := range []func() error{
			func() error { return p.Init(t.Context()) }, func() error { return p.Start(t.Context()) },
			func() error { return p.Ready(t.Context()) }, func() error { return p.Stop(t.Context()) },
		} {
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := os.Stat(filepath.Join(data, "storage")); !os.IsNotExist(err) {
			t.Errorf("a disabled provisioner made its directory (%v)", err)
		}
	})
}
