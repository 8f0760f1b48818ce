// Command pause is Fjord's pause image: the first process of every pod
// sandbox, which holds the pod's namespaces open. It blocks until SIGINT or
// SIGTERM and then exits 0. As PID 1 of the pod's PID namespace (when the
// pod shares one) it inherits orphaned processes, so it reaps every child
// that exits. Build it static: CGO_ENABLED=0 go build -ldflags '-s -w'.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-v" || os.Args[1] == "--version") {
		fmt.Println("fjord pause")
		return
	}
	pause(func() {})
}

// pause calls ready once the signals are caught, then reaps children until
// SIGINT or SIGTERM arrives.
func pause(ready func()) {
	// SIGCHLD is coalesced by the kernel and by the channel alike, so each
	// one reaps every child that has exited, not one.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGCHLD)
	ready()
	for sig := range sigs {
		if sig != unix.SIGCHLD {
			return
		}
		reap()
	}
}

// reap collects the exit status of every child that has exited, without
// waiting for those still running.
func reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
	}
}
