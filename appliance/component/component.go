// Package component defines the lifecycle every part of the appliance follows
// and the Manager that starts and stops them in order.
package component

import "context"

// Component is one part of the appliance.
//
// The lifecycle is: Init once (fallible preparation, starts nothing), then Start
// (begins background work and returns), then Ready (blocks until the component
// serves, or ctx ends). Stop ends the work, honours ctx's deadline and may be
// called more than once, also after a failed Start. A component whose background
// work dies reports it on Err; it never exits the process itself.
type Component interface {
	Name() string
	Init(ctx context.Context) error
	Start(ctx context.Context) error
	Ready(ctx context.Context) error
	Stop(ctx context.Context) error
	// Err delivers at most one error when the running component fails. A nil
	// channel means the component cannot fail after Start.
	Err() <-chan error
}

// StartSuffices is implemented by a component whose successors need only its
// Start, not its readiness (a controller that installed its CRD and whose
// caches are still filling). The Manager then waits for its Ready alongside
// the components after it, instead of before them.
type StartSuffices interface {
	StartSuffices()
}
