package source

import (
	"context"
	"sync"
)

// repoLocks serialises work on one repository's cache directory, so that two
// Applications on the same repository never fetch into it at once.
type repoLocks struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

// lock takes the lock for key, waiting no longer than ctx allows; the
// returned function releases it.
func (l *repoLocks) lock(ctx context.Context, key string) (func(), error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]chan struct{}{}
	}
	ch, ok := l.m[key]
	if !ok {
		ch = make(chan struct{}, 1)
		l.m[key] = ch
	}
	l.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
