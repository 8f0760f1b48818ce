package dns

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"reflect"
	"strings"
	"sync"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"k8s.io/klog/v2"
)

// setGlobals sets CoreDNS's and caddy's process-wide knobs once: no start-up
// banner on stdout, the callback that gives klog its logger back (see
// keepKlog), and the standard library's log package (which CoreDNS's
// plugin/pkg/log and caddy write through) routed into slog.
var setGlobals sync.Once

func initGlobals(base *slog.Logger) {
	setGlobals.Do(func() {
		caddy.Quiet = true
		dnsserver.Quiet = true
		caddy.RegisterParsingCallback(serverType, "kubernetes", restoreKlog)
		if base == nil || isSlogDefault(base.Handler()) {
			// slog's built-in default handler writes through the log
			// package; redirecting the log package into it would recurse.
			return
		}
		log.SetFlags(0) // slog stamps the time
		log.SetOutput(&stdLog{coredns: base.With("component", "coredns"), other: base.With("component", "log")})
	})
}

func isSlogDefault(h slog.Handler) bool {
	return fmt.Sprintf("%T", h) == "*slog.defaultHandler"
}

// stdLog turns the log package's lines into slog records. CoreDNS's lines
// carry a level ("[INFO] ") and often a plugin ("plugin/forward: "); lines
// without a level come from other users of the log package in the process.
type stdLog struct {
	coredns, other *slog.Logger
}

var levels = map[string]slog.Level{
	"[DEBUG] ": slog.LevelDebug, "[INFO] ": slog.LevelInfo, "[WARNING] ": slog.LevelWarn,
	"[ERROR] ": slog.LevelError, "[FATAL] ": slog.LevelError,
}

// Write implements io.Writer; the log package calls it once per line.
func (w *stdLog) Write(p []byte) (int, error) {
	msg := strings.TrimRight(string(p), "\n")
	logger, level := w.other, slog.LevelInfo
	for prefix, l := range levels {
		if rest, ok := strings.CutPrefix(msg, prefix); ok {
			logger, level, msg = w.coredns, l, rest
			break
		}
	}
	var attrs []slog.Attr
	if rest, ok := strings.CutPrefix(msg, "plugin/"); ok {
		if name, text, ok := strings.Cut(rest, ": "); ok && !strings.ContainsAny(name, " \n") {
			attrs, msg = []slog.Attr{slog.String("plugin", name)}, text
		}
	}
	logger.LogAttrs(context.Background(), level, msg, attrs...)
	return len(p), nil
}

// keepKlog runs start, which loads CoreDNS's kubernetes plugin, and puts
// klog's logger back: the plugin's setup makes klog write into CoreDNS's log
// for the whole process (plugin/kubernetes/setup.go), which would relabel
// every embedded Kubernetes component's lines. The logger is put back by a
// parsing callback right after the kubernetes directive, before the
// plugin's informers start logging, and again if start fails before that.
//
// Only a logger installed as a contextual logger (klog.SetSlogLogger does
// that) can be read back. Without one CoreDNS's stays: clearing it while
// other goroutines log through klog could hand them a nil logger.
func keepKlog(start func() error) error {
	klogMu.Lock()
	defer klogMu.Unlock()
	if prev := klog.Background(); reflect.TypeOf(prev.GetSink()) != reflect.TypeOf(klog.NewKlogr().GetSink()) {
		klogPrev = &prev
	}
	err := start()
	restoreKlog(nil)
	return err
}

var (
	klogMu   sync.Mutex   // serialises keepKlog
	klogPrev *klog.Logger // the logger to put back; nil when done or none
)

// restoreKlog is a caddy.ParsingCallback; keepKlog holds klogMu around it.
func restoreKlog(caddy.Context) error {
	if klogPrev != nil {
		klog.SetLoggerWithOptions(*klogPrev, klog.ContextualLogger(true))
		klogPrev = nil
	}
	return nil
}
