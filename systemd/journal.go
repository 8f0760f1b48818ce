package systemd

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coreos/go-systemd/v22/journal"
)

// StderrIsJournal reports whether stderr is connected to the systemd journal
// (JOURNAL_STREAM names stderr's device and inode), which is how a service
// run by systemd with the default StandardError=journal sees it. Logging
// then switches to the journal's native protocol, as systemd recommends
// (https://systemd.io/JOURNAL_NATIVE_PROTOCOL/#automatic-protocol-upgrading).
func StderrIsJournal() bool {
	ok, err := journal.StderrIsJournalStream()
	return ok && err == nil
}

// JournalHandler is a slog.Handler that sends each record to the systemd
// journal as one entry: MESSAGE is the message followed by its attributes
// (key=value, as the text handler writes them, so `journalctl -u fjord`
// reads like the terminal), PRIORITY follows the level, and every attribute
// is also a field of its own, named in upper case with groups joined by "_"
// (application=… becomes APPLICATION=…, so `journalctl -u fjord
// APPLICATION=payment-gateway-oslo` selects one Application's lines).
//
// A record the journal refuses is written to stderr by a text handler instead.
type JournalHandler struct {
	level    slog.Leveler
	prefix   string      // key prefix of the open groups, "group." each
	text     string      // the pre-formatted attributes of WithAttrs, key=value
	fields   [][2]string // their fields
	fallback slog.Handler
	// send is journal.Send; tests replace it.
	send func(msg string, p journal.Priority, vars map[string]string) error
}

var _ slog.Handler = (*JournalHandler)(nil)

// NewJournalHandler returns a JournalHandler for records at opts.Level and
// above (info when opts or its level is nil).
func NewJournalHandler(opts *slog.HandlerOptions) *JournalHandler {
	if opts == nil {
		opts = &slog.HandlerOptions{}
	}
	var level slog.Leveler = slog.LevelInfo
	if opts.Level != nil {
		level = opts.Level
	}
	return &JournalHandler{
		level:    level,
		fallback: slog.NewTextHandler(os.Stderr, opts),
		send:     journal.Send,
	}
}

// Enabled implements slog.Handler.
func (h *JournalHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

// Handle implements slog.Handler.
func (h *JournalHandler) Handle(ctx context.Context, r slog.Record) error {
	var msg strings.Builder
	msg.WriteString(r.Message)
	msg.WriteString(h.text)
	vars := make(map[string]string, len(h.fields)+r.NumAttrs()+5)
	for _, f := range h.fields {
		vars[f[0]] = f[1]
	}
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&msg, vars, h.prefix, a)
		return true
	})
	vars["SYSLOG_IDENTIFIER"] = "fjord"
	if r.PC != 0 {
		f, _ := runtime.CallersFrames([]uintptr{r.PC}).Next()
		vars["CODE_FILE"], vars["CODE_LINE"], vars["CODE_FUNC"] = f.File, strconv.Itoa(f.Line), f.Function
	}
	if err := h.send(msg.String(), priority(r.Level), vars); err != nil {
		return h.fallback.Handle(ctx, r)
	}
	return nil
}

// WithAttrs implements slog.Handler.
func (h *JournalHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	var text strings.Builder
	text.WriteString(h.text)
	vars := map[string]string{}
	for _, a := range attrs {
		appendAttr(&text, vars, h.prefix, a)
	}
	c.text = text.String()
	c.fields = append([][2]string(nil), h.fields...)
	for k, v := range vars {
		c.fields = append(c.fields, [2]string{k, v})
	}
	c.fallback = h.fallback.WithAttrs(attrs)
	return &c
}

// WithGroup implements slog.Handler.
func (h *JournalHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.prefix = h.prefix + name + "."
	c.fallback = h.fallback.WithGroup(name)
	return &c
}

// appendAttr writes a as " key=value" to msg and as a field to vars; keys
// and field names carry the group prefix.
func appendAttr(msg *strings.Builder, vars map[string]string, keyPrefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		prefix := keyPrefix
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			appendAttr(msg, vars, prefix, g)
		}
		return
	}
	key := keyPrefix + a.Key
	value := valueString(a.Value)
	msg.WriteByte(' ')
	msg.WriteString(quoteIfNeeded(key))
	msg.WriteByte('=')
	msg.WriteString(quoteIfNeeded(value))
	vars[fieldName(key)] = value
}

func valueString(v slog.Value) string {
	switch v.Kind() {
	case slog.KindTime:
		return v.Time().Format(time.RFC3339Nano)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return err.Error()
		}
	}
	return v.String()
}

// quoteIfNeeded quotes s the way slog's text handler does: when it is empty
// or holds spaces, quotes, '=' or anything unprintable.
func quoteIfNeeded(s string) string {
	if s == "" {
		return `""`
	}
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b <= ' ' || b == '=' || b == '"' || b == 0x7f {
				return strconv.Quote(s)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || !strconv.IsPrint(r) {
			return strconv.Quote(s)
		}
		i += size
	}
	return s
}

// reservedFields are journal fields with a meaning of their own, which an
// attribute must not overwrite; such an attribute becomes FJORD_<NAME>.
var reservedFields = map[string]bool{
	"MESSAGE": true, "MESSAGE_ID": true, "PRIORITY": true, "CODE_FILE": true, "CODE_LINE": true,
	"CODE_FUNC": true, "ERRNO": true, "SYSLOG_FACILITY": true, "SYSLOG_IDENTIFIER": true,
	"SYSLOG_PID": true, "SYSLOG_TIMESTAMP": true, "SYSLOG_RAW": true, "TID": true,
	"INVOCATION_ID": true, "USER_INVOCATION_ID": true, "UNIT": true, "USER_UNIT": true,
	"DOCUMENTATION": true, "OBJECT_PID": true,
}

// fieldName turns an attribute key into a journal field name: upper case
// letters, digits and underscores, not starting with an underscore or a
// digit, at most 64 characters (journald drops other fields).
func fieldName(key string) string {
	b := make([]byte, 0, len(key))
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'a' && c <= 'z':
			b = append(b, c-'a'+'A')
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b = append(b, c)
		default:
			b = append(b, '_')
		}
	}
	name := string(b)
	if name == "" || name[0] == '_' || (name[0] >= '0' && name[0] <= '9') || reservedFields[name] {
		name = "FJORD_" + strings.TrimLeft(name, "_")
	}
	if len(name) > 64 {
		name = name[:64]
	}
	return name
}

// priority maps a slog level to syslog's priorities, as journald uses them.
func priority(l slog.Level) journal.Priority {
	switch {
	case l >= slog.LevelError:
		return journal.PriErr
	case l >= slog.LevelWarn:
		return journal.PriWarning
	case l >= slog.LevelInfo:
		return journal.PriInfo
	default:
		return journal.PriDebug
	}
}
