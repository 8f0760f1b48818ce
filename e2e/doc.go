// Package e2e runs the real fjord binary, kind-like, scenario by scenario.
// The tests carry the `e2e` build tag and need FJORD_BIN (built once by
// `make e2e`) or build the binary themselves; see the README.
package e2e
