package source

import (
	"cmp"
	"errors"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// refTable is a repository's refs as a server advertises them.
type refTable struct {
	// headTarget is the branch HEAD points at, empty when HEAD is detached or
	// the server does not say.
	headTarget plumbing.ReferenceName
	// head is HEAD's object when HEAD is advertised as a hash.
	head plumbing.Hash
	// commits maps each ref to the commit it points at; annotated tags are
	// peeled (servers advertise "refs/tags/v1^{}" for them).
	commits map[plumbing.ReferenceName]plumbing.Hash
}

// target is what a revision names on the remote.
type target struct {
	// ref is the remote ref to fetch.
	ref plumbing.ReferenceName
	// commit is the commit it points at.
	commit plumbing.Hash
}

// newRefTable builds a table from an advertisement listed with
// git.AppendPeeled.
func newRefTable(refs []*plumbing.Reference) refTable {
	t := refTable{commits: map[plumbing.ReferenceName]plumbing.Hash{}}
	peeled := map[plumbing.ReferenceName]plumbing.Hash{}
	for _, ref := range refs {
		name := ref.Name()
		switch {
		case name == plumbing.HEAD && ref.Type() == plumbing.SymbolicReference:
			t.headTarget = ref.Target()
		case name == plumbing.HEAD:
			t.head = ref.Hash()
		case ref.Type() != plumbing.HashReference:
		case strings.HasSuffix(string(name), "^{}"):
			peeled[plumbing.ReferenceName(strings.TrimSuffix(string(name), "^{}"))] = ref.Hash()
		default:
			t.commits[name] = ref.Hash()
		}
	}
	for name, h := range peeled {
		t.commits[name] = h
	}
	return t
}

// localRefTable builds a table from a repository on disk, peeling annotated
// tags itself.
func localRefTable(s storer.Storer) (refTable, error) {
	t := refTable{commits: map[plumbing.ReferenceName]plumbing.Hash{}}
	iter, err := s.IterReferences()
	if err != nil {
		return t, err
	}
	err = iter.ForEach(func(ref *plumbing.Reference) error {
		name := ref.Name()
		switch {
		case name == plumbing.HEAD && ref.Type() == plumbing.SymbolicReference:
			t.headTarget = ref.Target()
		case ref.Type() != plumbing.HashReference:
		case name == plumbing.HEAD:
			t.head = ref.Hash()
		default:
			t.commits[name] = peel(s, ref.Hash())
		}
		return nil
	})
	return t, err
}

// peel follows tag objects to the commit they tag; it returns h when h is
// not a tag object in s.
func peel(s storer.EncodedObjectStorer, h plumbing.Hash) plumbing.Hash {
	for range 10 {
		tag, err := object.GetTag(s, h)
		if err != nil {
			return h
		}
		h = tag.Target
	}
	return h
}

// lookup finds the ref a revision names, the way Argo CD does: HEAD or empty
// is the default branch; otherwise a full ref name, then a branch, then a
// tag.
func (t refTable) lookup(revision string) (target, bool) {
	if revision == "" || revision == "HEAD" {
		if t.headTarget != "" {
			if c, ok := t.commits[t.headTarget]; ok {
				return target{ref: t.headTarget, commit: c}, true
			}
		}
		if !t.head.IsZero() {
			return target{ref: plumbing.HEAD, commit: t.head}, true
		}
		return target{}, false
	}
	for _, name := range []string{revision, "refs/heads/" + revision, "refs/tags/" + revision} {
		if !strings.HasPrefix(name, "refs/") {
			continue
		}
		if c, ok := t.commits[plumbing.ReferenceName(name)]; ok {
			return target{ref: plumbing.ReferenceName(name), commit: c}, true
		}
	}
	return target{}, false
}

// tipsWithPrefix returns the distinct advertised commits starting with the
// short SHA prefix.
func (t refTable) tipsWithPrefix(prefix string) []plumbing.Hash {
	seen := map[plumbing.Hash]bool{}
	var out []plumbing.Hash
	for _, c := range append(mapValues(t.commits), t.head) {
		if !c.IsZero() && strings.HasPrefix(c.String(), prefix) && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// refAt returns a ref pointing at commit, preferring branches, then tags, by
// name so that the choice is stable.
func (t refTable) refAt(commit plumbing.Hash) (plumbing.ReferenceName, bool) {
	var names []string
	for name, c := range t.commits {
		if c == commit {
			names = append(names, string(name))
		}
	}
	if len(names) == 0 {
		return "", false
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Or(cmp.Compare(refRank(a), refRank(b)), strings.Compare(a, b))
	})
	return plumbing.ReferenceName(names[0]), true
}

func refRank(name string) int {
	switch {
	case strings.HasPrefix(name, "refs/heads/"):
		return 0
	case strings.HasPrefix(name, "refs/tags/"):
		return 1
	}
	return 2
}

func mapValues(m map[plumbing.ReferenceName]plumbing.Hash) []plumbing.Hash {
	out := make([]plumbing.Hash, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// isHex reports whether s is lower- or upper-case hexadecimal.
func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return s != ""
}

// isFullSHA reports whether revision is a complete SHA-1 commit id.
func isFullSHA(revision string) bool {
	return len(revision) == 40 && isHex(revision)
}

// isShortSHA reports whether revision may be an abbreviated commit id: at
// least 7 hex digits, as git abbreviates.
func isShortSHA(revision string) bool {
	return len(revision) >= 7 && len(revision) < 40 && isHex(revision)
}

// commitsWithPrefix returns the commits in s whose id starts with prefix.
func commitsWithPrefix(s storer.EncodedObjectStorer, prefix string) ([]plumbing.Hash, error) {
	iter, err := s.IterEncodedObjects(plumbing.CommitObject)
	if err != nil {
		return nil, err
	}
	var out []plumbing.Hash
	err = iter.ForEach(func(o plumbing.EncodedObject) error {
		if strings.HasPrefix(o.Hash().String(), prefix) {
			out = append(out, o.Hash())
		}
		return nil
	})
	return out, err
}

// hasCommit reports whether s holds the commit h.
func hasCommit(s storer.EncodedObjectStorer, h plumbing.Hash) bool {
	if h.IsZero() {
		return false
	}
	_, err := object.GetCommit(s, h)
	return err == nil
}

// uniqueShort resolves a short SHA among candidates.
func uniqueShort(revision string, candidates []plumbing.Hash) (plumbing.Hash, bool, error) {
	switch len(candidates) {
	case 0:
		return plumbing.ZeroHash, false, nil
	case 1:
		return candidates[0], true, nil
	}
	return plumbing.ZeroHash, false, invalidError{errors.New("short SHA " + revision + " is ambiguous; give more digits")}
}
