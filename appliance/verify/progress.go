package verify

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Progress shows the phases of a run as they end, one plain line each with
// the phase's elapsed time. On a terminal the phases still running are also
// shown on a last line that counts the seconds and is redrawn in place.
// A nil *Progress shows nothing.
type Progress struct {
	w   io.Writer
	tty bool

	mu      sync.Mutex
	running []string
	began   map[string]time.Time
	status  string // the server's last STATUS=, while it starts
	drawn   bool
	stop    chan struct{}
	stopped chan struct{}
}

// NewProgress returns a Progress writing to w; tty turns the live line on.
func NewProgress(w io.Writer, tty bool) *Progress {
	p := &Progress{w: w, tty: tty, began: map[string]time.Time{}}
	if tty {
		p.stop, p.stopped = make(chan struct{}), make(chan struct{})
		go p.redraw()
	}
	return p
}

// Begin marks the start of a phase.
func (p *Progress) Begin(name string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running = append(p.running, name)
	p.began[name] = time.Now()
}

// End marks the end of a phase, prints its line and returns it.
func (p *Progress) End(name, detail string) Phase {
	if p == nil {
		return Phase{Name: name, Detail: detail}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ph := Phase{Name: name, Detail: detail, Seconds: time.Since(p.began[name]).Seconds()}
	for i, r := range p.running {
		if r == name {
			p.running = append(p.running[:i], p.running[i+1:]...)
			break
		}
	}
	p.erase()
	fmt.Fprintf(p.w, "%-8s %6.2fs  %s\n", name, ph.Seconds, detail)
	p.draw()
	return ph
}

// Note prints a line between the phases.
func (p *Progress) Note(line string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.erase()
	fmt.Fprintln(p.w, line)
	p.draw()
}

// Status records the server's status line, shown on the live line.
func (p *Progress) Status(s string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.status = s
	p.mu.Unlock()
}

// Close removes the live line and stops redrawing it.
func (p *Progress) Close() {
	if p == nil || !p.tty {
		return
	}
	select {
	case <-p.stop:
		return
	default:
	}
	close(p.stop)
	<-p.stopped
	p.mu.Lock()
	p.erase()
	p.mu.Unlock()
}

func (p *Progress) redraw() {
	defer close(p.stopped)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.erase()
			p.draw()
			p.mu.Unlock()
		}
	}
}

// erase clears the live line; p.mu is held.
func (p *Progress) erase() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

// draw prints the live line; p.mu is held.
func (p *Progress) draw() {
	if !p.tty || len(p.running) == 0 {
		return
	}
	var parts []string
	for _, r := range p.running {
		s := fmt.Sprintf("%s %.1fs", r, time.Since(p.began[r]).Seconds())
		if r == "start" && p.status != "" {
			s += " (" + p.status + ")"
		}
		parts = append(parts, s)
	}
	fmt.Fprint(p.w, "… "+strings.Join(parts, " · "))
	p.drawn = true
}
