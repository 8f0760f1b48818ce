package dns

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestStdLog(t *testing.T) {
	for _, tc := range []struct {
		name, line, want string
	}{
		{name: "keeps a plugin's level and name", line: "[ERROR] plugin/errors: 2 example.org. A: i/o timeout\n",
			want: "level=ERROR msg=\"2 example.org. A: i/o timeout\" component=coredns plugin=errors"},
		{name: "maps WARNING to warn", line: "[WARNING] No files matching import glob pattern\n",
			want: "level=WARN msg=\"No files matching import glob pattern\" component=coredns"},
		{name: "labels lines without a level as the log package's", line: "listen udp: address in use\n",
			want: "level=INFO msg=\"listen udp: address in use\" component=log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			base := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}}))
			w := &stdLog{coredns: base.With("component", "coredns"), other: base.With("component", "log")}
			if n, err := w.Write([]byte(tc.line)); n != len(tc.line) || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
			if got := strings.TrimSpace(buf.String()); got != tc.want {
				t.Errorf("logged %q, want %q", got, tc.want)
			}
		})
	}
}
