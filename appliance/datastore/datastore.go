package datastore

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/fjord-dev/fjord/appliance/component"
	"github.com/fjord-dev/fjord/bootstrap"
)

// Runtime is what a datastore needs beyond its configuration section.
type Runtime struct {
	DataDir string
	PKI     bootstrap.PKI
	Log     *slog.Logger
}

// Backend is how the API server reaches the datastore.
type Backend struct {
	Servers  []string
	CAFile   string
	CertFile string
	KeyFile  string
}

// Datastore is a component that also tells the API server how to reach it.
type Datastore interface {
	component.Component
	// Backend is valid once Ready returned nil.
	Backend() Backend
	// Dir is where the datastore keeps its files (empty for remote ones).
	Dir() string
}

// New returns the datastore cfg selects.
func New(cfg Config, rt Runtime) (Datastore, error) {
	kind, err := cfg.Kind()
	if err != nil {
		return nil, err
	}
	dbDir := filepath.Join(rt.DataDir, "db")
	switch kind {
	case KindEtcd:
		return newEtcd(cfg, rt, filepath.Join(dbDir, "etcd")), nil
	case KindSQLite, KindPostgres, KindMySQL:
		return newKine(cfg, rt, kind, dbDir), nil
	case KindExternalEtcd:
		var servers []string
		for _, s := range strings.Split(cfg.Endpoint, ",") {
			servers = append(servers, strings.TrimSpace(s))
		}
		return &external{backend: Backend{Servers: servers, CAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile}}, nil
	}
	return nil, fmt.Errorf("datastore %q is not supported", kind)
}
