// Package sealcompat checks Fjord's sealing package against upstream
// sealed-secrets (github.com/bitnami/sealed-secrets, the library kubeseal
// and the upstream controller are built from), both ways: what one seals
// the other unseals, for every scope and the deprecated v1 form. It also
// writes the golden files that appliance/sealing tests without upstream.
//
// It is its own module so that Fjord does not depend on upstream.
package sealcompat
