//go:build tools

// Package helmcli pins upstream's helm CLI, built by `make helm` for the
// golden tests that compare Fjord's chart rendering with `helm template` of
// the same helm version (its own module: the CLI needs more than Fjord's
// go.mod holds).
package helmcli

import _ "helm.sh/helm/v3/cmd/helm"
