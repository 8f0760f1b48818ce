package datastore

import (
	"context"

	"github.com/fjord-dev/fjord/appliance/component"
)

// external is an etcd cluster run by someone else: nothing to start, the API
// server connects to it directly.
type external struct{ backend Backend }

var _ component.Component = (*external)(nil)

func (e *external) Name() string                { return "datastore" }
func (e *external) Init(context.Context) error  { return nil }
func (e *external) Start(context.Context) error { return nil }
func (e *external) Ready(context.Context) error { return nil }
func (e *external) Stop(context.Context) error  { return nil }
func (e *external) Err() <-chan error           { return nil }
func (e *external) Backend() Backend            { return e.backend }
func (e *external) Dir() string                 { return "" }
