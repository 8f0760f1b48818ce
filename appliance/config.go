package appliance

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fjord-dev/fjord/appliance/component"
	"github.com/fjord-dev/fjord/appliance/controlplane"
	"github.com/fjord-dev/fjord/appliance/datastore"
	"github.com/fjord-dev/fjord/appliance/fsyncgate"
	"github.com/fjord-dev/fjord/appliance/gitops"
	"github.com/fjord-dev/fjord/appliance/node"
	"github.com/fjord-dev/fjord/appliance/node/dns"
	"github.com/fjord-dev/fjord/appliance/node/localpath"
	"github.com/fjord-dev/fjord/appliance/node/metrics"
	"github.com/fjord-dev/fjord/appliance/sealing"
	"github.com/fjord-dev/fjord/appliance/snapshot"
)

// ConfigVersion is the version of the configuration file format.
const ConfigVersion = "fjord.dev/v1alpha1"

// DefaultConfigFile is where `fjord server` looks for its configuration.
const DefaultConfigFile = "/etc/fjord/config.yaml"

// Config is the whole configuration of one Fjord server. Keys in the
// configuration file mirror the flag names (`data-dir`, `https-listen-port`);
// every section is inlined, so the file is flat like k3s's.
type Config struct {
	// DataDir holds the datastore, PKI, kubeconfigs and caches.
	DataDir string `yaml:"data-dir"`
	// HTTPSListenPort is the API server's port.
	HTTPSListenPort int `yaml:"https-listen-port"`
	// BindAddress is the address the API server listens on.
	BindAddress string `yaml:"bind-address"`
	// NodeIP is the address the API server advertises; detected when empty.
	NodeIP string `yaml:"node-ip"`
	// NodeName is this node's name; the hostname when empty.
	NodeName string `yaml:"node-name"`
	// DisableAgent runs the control plane without the node agent.
	DisableAgent bool `yaml:"disable-agent"`
	// LogFormat is text or json.
	LogFormat string `yaml:"log-format"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log-level"`
	// DisableMemoryTrim keeps what fjord server holds after a spell of work
	// instead of handing the free heap pages and its binary's pages back
	// once it is quiet (package pageout): the first operation after a trim
	// is slower while code is read back from disk. containerd and the shim
	// trim themselves either way.
	DisableMemoryTrim bool `yaml:"disable-memory-trim"`
	// DebugListen is the address (host:port) of a net/http/pprof listener
	// for profiling; empty (the default) turns it off. It has no
	// authentication: bind it to loopback.
	DebugListen string `yaml:"debug-listen"`
	// ComponentReadyTimeout bounds how long a start waits for each
	// component (etcd, the API server, the node...) to become ready before
	// it gives up and exits, for systemd to start it again. The default
	// fits real hardware; a VM under software emulation needs more.
	ComponentReadyTimeout time.Duration `yaml:"component-ready-timeout"`

	Datastore    datastore.Config    `yaml:",inline"`
	FsyncGate    fsyncgate.Config    `yaml:",inline"`
	ControlPlane controlplane.Config `yaml:",inline"`
	GitOps       gitops.Config       `yaml:",inline"`
	Sealing      sealing.Config      `yaml:",inline"`
	Node         node.Config         `yaml:",inline"`
	DNS          dns.Config          `yaml:",inline"`
	LocalPath    localpath.Config    `yaml:",inline"`
	Metrics      metrics.Config      `yaml:",inline"`
	Snapshot     snapshot.Config     `yaml:",inline"`
}

// Default returns the configuration used when nothing else is said.
func Default() Config {
	return Config{
		DataDir:               "/var/lib/fjord",
		HTTPSListenPort:       6443,
		BindAddress:           "0.0.0.0",
		LogFormat:             "text",
		LogLevel:              "info",
		ComponentReadyTimeout: component.DefaultReadyTimeout,
		Datastore:             datastore.Default(),
		FsyncGate:             fsyncgate.Default(),
		ControlPlane:          controlplane.Default(),
		GitOps:                gitops.Default(),
		Sealing:               sealing.Default(),
		Node:                  node.Default(),
		DNS:                   dns.Default(),
		LocalPath:             localpath.Default(),
		Metrics:               metrics.Default(),
		Snapshot:              snapshot.Default(),
	}
}

// Validate reports every problem in c at once. It has no side effects.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data-dir: must not be empty"))
	} else if !filepath.IsAbs(c.DataDir) {
		errs = append(errs, fmt.Errorf("data-dir: %q must be an absolute path", c.DataDir))
	}
	if c.HTTPSListenPort < 1 || c.HTTPSListenPort > 65535 {
		errs = append(errs, fmt.Errorf("https-listen-port: %d is not a port (1-65535)", c.HTTPSListenPort))
	}
	if net.ParseIP(c.BindAddress) == nil {
		errs = append(errs, fmt.Errorf("bind-address: %q is not an IP address", c.BindAddress))
	}
	if c.NodeIP != "" {
		if ip := net.ParseIP(c.NodeIP); ip == nil {
			errs = append(errs, fmt.Errorf("node-ip: %q is not an IP address", c.NodeIP))
		} else if ip.IsLoopback() {
			errs = append(errs, fmt.Errorf("node-ip: %q is a loopback address; the API server cannot advertise it", c.NodeIP))
		}
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log-format: %q is not one of text, json", c.LogFormat))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log-level: %q is not one of debug, info, warn, error", c.LogLevel))
	}
	if c.ComponentReadyTimeout <= 0 {
		errs = append(errs, fmt.Errorf("component-ready-timeout: must be positive, not %s", c.ComponentReadyTimeout))
	}
	if c.DebugListen != "" {
		if _, _, err := net.SplitHostPort(c.DebugListen); err != nil {
			errs = append(errs, fmt.Errorf("debug-listen: %q is not host:port", c.DebugListen))
		}
	}
	errs = append(errs, c.Datastore.Validate(), c.FsyncGate.Validate(), c.ControlPlane.Validate(), c.GitOps.Validate(),
		c.Sealing.Validate(), c.Node.Validate(), c.DNS.Validate(), c.LocalPath.Validate(), c.Metrics.Validate(), c.Snapshot.Validate())
	if ip := net.ParseIP(c.DNS.ClusterDNS); ip != nil {
		if _, svc, err := net.ParseCIDR(c.ControlPlane.ServiceCIDR); err == nil && !svc.Contains(ip) {
			errs = append(errs, fmt.Errorf("cluster-dns: %s is not in service-cidr %s", ip, svc))
		}
	}
	return errors.Join(errs...)
}

// Keys returns every configuration key, sorted.
func (c *Config) Keys() []string {
	var keys []string
	walkFields(reflect.ValueOf(c).Elem(), func(key string, _ reflect.Value) bool {
		keys = append(keys, key)
		return true
	})
	sort.Strings(keys)
	return keys
}

// Set parses value for the configuration key and stores it in c. It is how
// files, environment variables and flags all reach the same Config.
func (c *Config) Set(key, value string) error {
	var field reflect.Value
	walkFields(reflect.ValueOf(c).Elem(), func(k string, v reflect.Value) bool {
		if k == key {
			field = v
			return false
		}
		return true
	})
	if !field.IsValid() {
		return fmt.Errorf("unknown key %q", key)
	}
	if err := setField(field, value); err != nil {
		return fmt.Errorf("key %q: %w", key, err)
	}
	return nil
}

var durationType = reflect.TypeFor[time.Duration]()

func setField(f reflect.Value, value string) error {
	value = strings.TrimSpace(value)
	switch {
	case f.Type() == durationType:
		d, err := time.ParseDuration(value)
		if err != nil {
			return fmt.Errorf("invalid duration %q (use e.g. 10ms, 30s, 24h)", value)
		}
		f.SetInt(int64(d))
	case f.Kind() == reflect.String:
		f.SetString(value)
	case f.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("invalid boolean %q", value)
		}
		f.SetBool(b)
	case f.CanInt():
		n, err := strconv.ParseInt(value, 0, 64)
		if err != nil || f.OverflowInt(n) {
			return fmt.Errorf("invalid integer %q", value)
		}
		f.SetInt(n)
	case f.CanUint():
		n, err := strconv.ParseUint(value, 0, 64)
		if err != nil || f.OverflowUint(n) {
			return fmt.Errorf("invalid unsigned integer %q", value)
		}
		f.SetUint(n)
	case f.CanFloat():
		n, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return fmt.Errorf("invalid number %q", value)
		}
		f.SetFloat(n)
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
		var items []string
		for _, s := range strings.Split(value, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		f.Set(reflect.ValueOf(items).Convert(f.Type()))
	default:
		return fmt.Errorf("unsupported type %s", f.Type())
	}
	return nil
}

// walkFields calls fn for every leaf field with its key, descending into inline
// sections. fn returns false to stop.
func walkFields(v reflect.Value, fn func(key string, f reflect.Value) bool) bool {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") && sf.Type.Kind() == reflect.Struct {
			if !walkFields(v.Field(i), fn) {
				return false
			}
			continue
		}
		if name == "" {
			continue
		}
		if !fn(name, v.Field(i)) {
			return false
		}
	}
	return true
}

// ConfigFiles returns the main configuration file followed by its drop-ins
// (`<path>.d/*.yaml`, alphabetical), the order in which they apply. A missing
// main file is skipped unless required.
func ConfigFiles(path string, required bool) ([]string, error) {
	var files []string
	switch _, err := os.Stat(path); {
	case err == nil:
		files = append(files, path)
	case errors.Is(err, os.ErrNotExist) && !required:
	default:
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	dropins, err := filepath.Glob(filepath.Join(path+".d", "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("config %s.d: %w", path, err)
	}
	sort.Strings(dropins)
	return append(files, dropins...), nil
}

// ApplyFile reads one YAML configuration file and sets every key it holds.
// Nested maps are flattened with dots (`gitops: {poll-interval: 1m}` is
// `gitops.poll-interval`). Keys in skip (already set by the environment or a
// flag, which take precedence) are checked but not applied. Errors name the
// file and the key.
func (c *Config) ApplyFile(path string, skip func(key string) bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config %s: invalid YAML: %w", path, err)
	}
	flat := map[string]string{}
	if err := flatten("", doc, flat); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	keys := make([]string, 0, len(flat))
	for k := range flat {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		if k == "version" {
			if flat[k] != ConfigVersion {
				errs = append(errs, fmt.Errorf("config %s: key \"version\": %q is not %q", path, flat[k], ConfigVersion))
			}
			continue
		}
		target := c
		if skip != nil && skip(k) {
			scratch := *c
			target = &scratch
		}
		if err := target.Set(k, flat[k]); err != nil {
			errs = append(errs, fmt.Errorf("config %s: %w", path, err))
		}
	}
	return errors.Join(errs...)
}

func flatten(prefix string, in map[string]any, out map[string]string) error {
	for k, v := range in {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		switch v := v.(type) {
		case map[string]any:
			if err := flatten(key, v, out); err != nil {
				return err
			}
		case []any:
			parts := make([]string, len(v))
			for i, item := range v {
				if _, ok := item.(map[string]any); ok {
					return fmt.Errorf("key %q: a list of maps is not supported here", key)
				}
				parts[i] = fmt.Sprint(item)
			}
			out[key] = strings.Join(parts, ",")
		case nil:
			out[key] = ""
		default:
			out[key] = fmt.Sprint(v)
		}
	}
	return nil
}

// EnvName is the environment variable for a configuration key: FJORD_ and the
// key in upper case with dashes and dots as underscores (data-dir → FJORD_DATA_DIR).
func EnvName(key string) string {
	return "FJORD_" + strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToUpper(key))
}

// KeyInfo describes one configuration key, for building flags from the Config.
type KeyInfo struct {
	Name string
	// Bool keys are switches (`--disable-agent`); the others take a value.
	Bool bool
	// Default is the key's value in the Config it was read from, as a string.
	Default string
}

// KeyInfos describes every key of c, sorted by name.
func (c *Config) KeyInfos() []KeyInfo {
	var infos []KeyInfo
	walkFields(reflect.ValueOf(c).Elem(), func(key string, f reflect.Value) bool {
		info := KeyInfo{Name: key, Bool: f.Kind() == reflect.Bool}
		switch {
		case f.Type() == durationType:
			info.Default = time.Duration(f.Int()).String()
		case f.CanFloat():
			info.Default = strconv.FormatFloat(f.Float(), 'g', -1, 64)
		case f.Kind() == reflect.Slice:
			info.Default = strings.Join(f.Interface().([]string), ",")
		default:
			info.Default = fmt.Sprint(f.Interface())
		}
		infos = append(infos, info)
		return true
	})
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	return infos
}

// Lookup returns the value of a configuration key set by the environment or a
// flag, and whether it was set at all.
type Lookup func(key string) (value string, ok bool)

// LoadConfig merges, lowest precedence first: the defaults, the configuration
// file at path (skipped when missing unless required), its drop-ins in
// `<path>.d/*.yaml` in alphabetical order, and what lookup returns (the
// environment and flags, which the caller has already ranked).
func LoadConfig(path string, required bool, lookup Lookup) (Config, error) {
	cfg := Default()
	files, err := ConfigFiles(path, required)
	if err != nil {
		return cfg, err
	}
	isSet := func(key string) bool {
		if lookup == nil {
			return false
		}
		_, ok := lookup(key)
		return ok
	}
	for _, f := range files {
		if err := cfg.ApplyFile(f, isSet); err != nil {
			return cfg, err
		}
	}
	if lookup == nil {
		return cfg, nil
	}
	for _, key := range cfg.Keys() {
		value, ok := lookup(key)
		if !ok {
			continue
		}
		if err := cfg.Set(key, value); err != nil {
			return cfg, fmt.Errorf("flag --%s (or %s): %w", key, EnvName(key), err)
		}
	}
	return cfg, nil
}
