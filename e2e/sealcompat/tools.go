//go:build tools

package sealcompat

// The kubeseal CLI of the pinned upstream version, built by `make kubeseal`
// and by the CLI tests; this import keeps its dependencies in go.mod.
import _ "github.com/bitnami/sealed-secrets/cmd/kubeseal"
