package controlplane

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apiserver/pkg/util/compatibility"
	"k8s.io/client-go/rest"

	"github.com/fjord-dev/fjord/appliance/datastore"
	"github.com/fjord-dev/fjord/bootstrap"
)

// Runtime is the derived state the control plane runs with; it is built by
// the appliance and never serialised.
type Runtime struct {
	DataDir          string
	NodeName         string
	NodeIP           net.IP
	BindAddress      string
	Port             int
	PKI              bootstrap.PKI
	Kubeconfigs      bootstrap.Kubeconfigs
	EncryptionConfig string
	// Backend is called at the API server's Start, after the datastore is ready.
	Backend func() datastore.Backend
	// StopGrace, when set, bounds how long Stop waits for kube-apiserver's
	// graceful shutdown (see APIServer.Stop).
	StopGrace time.Duration
	Log       *slog.Logger
}

var globalsOnce sync.Once
var globalsErr error

// setGlobals applies the process-wide feature gates and component versions
// once: they are shared by the three components and cannot be set twice.
func setGlobals() error {
	globalsOnce.Do(func() {
		rest.SetDefaultWarningHandler(rest.NoWarnings{})
		globalsErr = compatibility.DefaultComponentGlobalsRegistry.Set()
	})
	return globalsErr
}

// parseFlags parses args into the component's own flag sets, so every option
// is defaulted and validated exactly as the upstream binary does it.
func parseFlags(component string, sets map[string]*pflag.FlagSet, args []string) error {
	fs := pflag.NewFlagSet(component, pflag.ContinueOnError)
	for _, s := range sets {
		fs.AddFlagSet(s)
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%s flags: %w", component, err)
	}
	return nil
}

func aggregate(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errors.NewAggregate(errs)
}

// run starts fn in the background and reports its end on errc.
func run(ctx context.Context, errc chan<- error, done chan<- struct{}, fn func(context.Context) error) {
	go func() {
		defer close(done)
		err := fn(ctx)
		if ctx.Err() != nil {
			return // stopping: not a failure
		}
		if err == nil {
			err = fmt.Errorf("returned unexpectedly")
		}
		errc <- err
	}()
}
