package fsyncgate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ChildCommand starts a process that measures for its parent by calling
// ServeChild: Path with Args (after the program name), and Env added to the
// parent's environment.
type ChildCommand struct {
	Path string
	Args []string
	Env  []string
}

// FjordChildArgs are the arguments that make the fjord binary serve as the
// measuring child: `fjord preflight fsync --child` (a hidden flag).
var FjordChildArgs = []string{"preflight", "fsync", "--child"}

// FjordChild returns the command that re-executes the running fjord binary
// as the measuring child.
func FjordChild() (ChildCommand, error) {
	exe, err := os.Executable()
	if err != nil {
		return ChildCommand{}, fmt.Errorf("finding the fjord binary to measure in a child process: %w", err)
	}
	return ChildCommand{Path: exe, Args: FjordChildArgs}, nil
}

// ChildEnv is set to 1 in the measuring child's environment. A process that
// has it does not start another child: a program that does not serve as the
// child when asked would otherwise start itself again and again.
const ChildEnv = "FJORD_FSYNC_GATE_CHILD"

// childFD is the descriptor of the test file in the child: the parent passes
// it as the first of exec.Cmd.ExtraFiles.
const childFD = 3

// childRequest is what the parent writes to the child's standard input.
type childRequest struct {
	Size        int64         `json:"size"`
	BlockSize   int           `json:"block_size"`
	Limit       time.Duration `json:"limit_ns"`
	EarlyStop   bool          `json:"early_stop"`
	MinSamples  int           `json:"min_samples"`
	Confidence  float64       `json:"confidence"`
	Margin      float64       `json:"margin"`
	MaxDuration time.Duration `json:"max_duration_ns"`
	Progress    bool          `json:"progress"`
}

// childMessage is one line the child writes to its standard output: progress
// while it measures, then the report (and the error, if any) once.
type childMessage struct {
	Progress *childProgress `json:"progress,omitempty"`
	Report   *Report        `json:"report,omitempty"`
	Error    string         `json:"error,omitempty"`
}

type childProgress struct {
	Samples      int           `json:"samples"`
	BytesWritten int64         `json:"bytes_written"`
	Size         int64         `json:"size"`
	Elapsed      time.Duration `json:"elapsed_ns"`
}

// childProgressEvery is how often the child reports progress: rarely enough
// that waking the parent does not disturb the measurement.
const childProgressEvery = 100 * time.Millisecond

// childEnv is the environment the child runs in: one P from the start, no
// asynchronous preemption signals, and the caller's additions.
func childEnv(extra []string) []string {
	env := make([]string, 0, len(os.Environ())+len(extra)+2)
	godebug := "asyncpreemptoff=1"
	for _, kv := range os.Environ() {
		switch k, v, _ := strings.Cut(kv, "="); k {
		case "GOMAXPROCS", ChildEnv:
			continue
		case "GODEBUG":
			if v != "" {
				godebug = v + "," + godebug
			}
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "GOMAXPROCS=1", "GODEBUG="+godebug, ChildEnv+"=1")
	return append(env, extra...)
}

// run measures on f, an empty test file, in a child process started with c
// (see "One quiet thread" in the package documentation). The report has the
// statistics; the caller fills in the directory's identity.
func (c ChildCommand) run(ctx context.Context, f *os.File, opts MeasureOptions, rep Report) (Report, error) {
	if os.Getenv(ChildEnv) != "" {
		return rep, fmt.Errorf("%s is set: this process is a measuring child and was asked to start another (does %s call ServeChild?)", ChildEnv, c.Path)
	}
	req, err := json.Marshal(childRequest{
		Size: opts.Size, BlockSize: opts.BlockSize, Limit: opts.Limit, EarlyStop: opts.EarlyStop,
		MinSamples: opts.MinSamples, Confidence: opts.Confidence, Margin: opts.Margin, MaxDuration: opts.MaxDuration,
		Progress: opts.Progress != nil,
	})
	if err != nil {
		return rep, err
	}
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	cmd.Env = childEnv(c.Env)
	cmd.Stdin = bytes.NewReader(req)
	cmd.ExtraFiles = []*os.File{f}
	// fio runs its job in a new session (setsid). With autogroup scheduling,
	// on by default, a session is a scheduling group of its own, and under
	// CPU load how long a task waits to run after each wake-up depends on its
	// group. The child does the same so that it waits as fio's job does.
	// Pdeathsig ends it with its parent, which removes the file.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	stderr := &tailBuffer{max: 4 << 10}
	cmd.Stderr = stderr
	// SIGTERM lets the child report what it measured until then. It checks
	// ctx after every fdatasync, and its one P gets to the signal within the
	// runtime's 10ms preemption tick: it ends within tens of milliseconds.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return rep, err
	}
	if err := cmd.Start(); err != nil {
		return rep, fmt.Errorf("starting the measuring child %s: %w", c.Path, err)
	}
	var final *childMessage
	var garbled error
	dec := json.NewDecoder(stdout)
	for {
		var msg childMessage
		if err := dec.Decode(&msg); err != nil {
			if !errors.Is(err, io.EOF) {
				// Not a measuring child (a test binary running its tests,
				// say): do not wait for it to finish.
				garbled = err
				_ = cmd.Process.Kill()
			}
			break // the child exited; Wait says how
		}
		if p := msg.Progress; p != nil && opts.Progress != nil {
			opts.Progress(Progress{Samples: p.Samples, BytesWritten: p.BytesWritten, Size: p.Size, Elapsed: p.Elapsed})
		}
		if msg.Report != nil {
			final = &msg
		}
	}
	werr := cmd.Wait()
	if final == nil {
		if cerr := context.Cause(ctx); cerr != nil {
			rep.StopReason = StopCanceled
			return rep, cerr
		}
		if garbled != nil {
			return rep, fmt.Errorf("%s does not answer as a measuring child (does it call fsyncgate.ServeChild?): %v", c.Path, garbled)
		}
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = "no report"
		}
		return rep, fmt.Errorf("measuring child %s: %v: %s", c.Path, werr, msg)
	}
	got := *final.Report
	got.Dir, got.Device, got.Filesystem, got.NonDurable = rep.Dir, rep.Device, rep.Filesystem, rep.NonDurable
	switch {
	case final.Error != "" && got.StopReason == StopCanceled && context.Cause(ctx) != nil:
		return got, context.Cause(ctx)
	case final.Error != "":
		return got, errors.New(final.Error)
	case werr != nil:
		return got, fmt.Errorf("measuring child %s: %w", c.Path, werr)
	}
	return got, nil
}

// ServeChild is the measuring child's side (see "One quiet thread" in the
// package documentation): it reads the options from in, measures on the test
// file its parent passed as descriptor 3, and writes progress and the report
// to out as JSON lines. A failed measurement is reported to the parent, not
// returned; the error is only for a broken exchange with the parent. ctx
// should be canceled by SIGTERM and SIGINT.
//
// It leaves the process with one P and no garbage collector: call it from a
// main that does nothing else.
func ServeChild(ctx context.Context, in io.Reader, out io.Writer) error {
	var req childRequest
	if err := json.NewDecoder(in).Decode(&req); err != nil {
		return fmt.Errorf("reading the measurement request: %w", err)
	}
	f := os.NewFile(childFD, "fsync-gate-test-file")
	if f == nil {
		return errors.New("no test file on descriptor 3")
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return fmt.Errorf("descriptor 3 is not the test file: %v", err)
	}

	// The loop allocates nothing; a collection would only add threads.
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(-1)

	enc := json.NewEncoder(out)
	opts := MeasureOptions{
		Size: req.Size, BlockSize: req.BlockSize, Limit: req.Limit, EarlyStop: req.EarlyStop,
		MinSamples: req.MinSamples, Confidence: req.Confidence, Margin: req.Margin, MaxDuration: req.MaxDuration,
	}
	if req.Progress {
		var last time.Duration
		opts.Progress = func(p Progress) {
			if done := p.Size-p.BytesWritten < int64(req.BlockSize); p.Elapsed-last < childProgressEvery && !done {
				return
			}
			last = p.Elapsed
			_ = enc.Encode(childMessage{Progress: &childProgress{Samples: p.Samples, BytesWritten: p.BytesWritten, Size: p.Size, Elapsed: p.Elapsed}})
		}
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return fmt.Errorf("invalid options: %w", err)
	}
	m := measurer{now: time.Now, wrap: newRawSyncer}
	rep, err := m.run(ctx, f, opts, newReport("", opts))
	msg := childMessage{Report: &rep}
	if err != nil {
		msg.Error = err.Error()
	}
	if err := enc.Encode(msg); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}

// rawSyncer writes and fdatasyncs with raw system calls. The Go runtime does
// not see them, so its monitor thread (sysmon), which otherwise wakes about
// twice per fdatasync to see whether to take the P from the goroutine in the
// system call, backs off to sleeping up to 10ms. The child has nothing else
// to run on its one P, so holding it while blocked costs nothing.
type rawSyncer struct {
	fd   uintptr
	name string
}

func newRawSyncer(f *os.File) syncer { return rawSyncer{fd: f.Fd(), name: f.Name()} }

func (s rawSyncer) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		w, _, e := unix.RawSyscall(unix.SYS_WRITE, s.fd, uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n))
		switch {
		case e == unix.EINTR:
			continue
		case e != 0:
			return n, &os.PathError{Op: "write", Path: s.name, Err: e}
		case w == 0:
			return n, &os.PathError{Op: "write", Path: s.name, Err: io.ErrShortWrite}
		}
		n += int(w)
	}
	return n, nil
}

func (s rawSyncer) Sync() error {
	for {
		_, _, e := unix.RawSyscall(unix.SYS_FDATASYNC, s.fd, 0, 0)
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return &os.PathError{Op: "fdatasync", Path: s.name, Err: e}
	}
}

// tailBuffer keeps the last max bytes written to it: the end of a child's
// standard error, for an error message.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = t.b[over:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }
