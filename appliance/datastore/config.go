// Package datastore runs the storage behind the API server: an embedded etcd
// tuned for one member on local NVMe (the default), or kine in front of SQLite,
// PostgreSQL or MySQL, or an external etcd cluster.
package datastore

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Config is the datastore section of the server configuration.
type Config struct {
	// Endpoint selects the datastore: empty for the embedded etcd,
	// sqlite://PATH, postgres://…, mysql://…, or https://… (external etcd,
	// several separated by commas).
	Endpoint string `yaml:"datastore-endpoint"`
	// CAFile, CertFile and KeyFile authenticate to an external etcd or to a
	// database that wants TLS.
	CAFile   string `yaml:"datastore-cafile"`
	CertFile string `yaml:"datastore-certfile"`
	KeyFile  string `yaml:"datastore-keyfile"`
	// EtcdClientPort and EtcdPeerPort are the embedded etcd's loopback ports.
	EtcdClientPort int `yaml:"etcd-client-port"`
	EtcdPeerPort   int `yaml:"etcd-peer-port"`
}

// Default returns the embedded etcd on its usual ports.
func Default() Config {
	return Config{EtcdClientPort: 2379, EtcdPeerPort: 2380}
}

// Kind names which datastore an endpoint selects.
type Kind string

// The datastores Fjord can run on.
const (
	KindEtcd         Kind = "etcd"          // embedded etcd
	KindSQLite       Kind = "sqlite"        // kine
	KindPostgres     Kind = "postgres"      // kine
	KindMySQL        Kind = "mysql"         // kine
	KindExternalEtcd Kind = "external-etcd" // https:// or http:// endpoints
)

// Kind returns the datastore c selects, or an error for an unknown scheme.
func (c Config) Kind() (Kind, error) {
	if c.Endpoint == "" {
		return KindEtcd, nil
	}
	scheme, _, ok := strings.Cut(c.Endpoint, "://")
	if !ok {
		return "", fmt.Errorf("datastore-endpoint: %q has no scheme (want sqlite://, postgres://, mysql://, https:// or empty for the embedded etcd)", Redact(c.Endpoint))
	}
	switch scheme {
	case "sqlite":
		return KindSQLite, nil
	case "postgres", "postgresql":
		return KindPostgres, nil
	case "mysql":
		return KindMySQL, nil
	case "https", "http":
		return KindExternalEtcd, nil
	}
	return "", fmt.Errorf("datastore-endpoint: unknown scheme %q (want sqlite://, postgres://, mysql://, https:// or empty for the embedded etcd)", scheme)
}

// Validate reports every problem in c at once.
func (c Config) Validate() error {
	var errs []error
	kind, err := c.Kind()
	if err != nil {
		errs = append(errs, err)
	}
	if kind == KindExternalEtcd {
		for _, ep := range strings.Split(c.Endpoint, ",") {
			if _, err := url.Parse(strings.TrimSpace(ep)); err != nil {
				errs = append(errs, fmt.Errorf("datastore-endpoint: %q is not a URL", Redact(ep)))
			}
		}
	}
	for name, port := range map[string]int{"etcd-client-port": c.EtcdClientPort, "etcd-peer-port": c.EtcdPeerPort} {
		if port < 1 || port > 65535 {
			errs = append(errs, fmt.Errorf("%s: %d is not a port (1-65535)", name, port))
		}
	}
	if c.EtcdClientPort == c.EtcdPeerPort {
		errs = append(errs, fmt.Errorf("etcd-peer-port: %d is also the etcd-client-port", c.EtcdPeerPort))
	}
	return errors.Join(errs...)
}

// Redact returns the endpoint with any password replaced, for logs and errors.
func Redact(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || u.User == nil {
		if i := strings.Index(endpoint, "@"); i >= 0 {
			if j := strings.Index(endpoint, "://"); j >= 0 && j < i {
				return endpoint[:j+3] + "REDACTED" + endpoint[i:]
			}
		}
		return endpoint
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
	}
	return u.String()
}
