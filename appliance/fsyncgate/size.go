package fsyncgate

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseSize reads a positive byte count: a plain number, or one with a binary
// unit (k, m, g, with or without B or iB, any case: 22m = 22MiB = 22·2^20 =
// 23068672), as fio reads --size.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(t)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size (use e.g. 22MiB, 22m or 23068672)", s)
	}
	var shift uint
	switch unit := strings.ToLower(strings.TrimSpace(t[i:])); unit {
	case "", "b":
	case "k", "kb", "kib":
		shift = 10
	case "m", "mb", "mib":
		shift = 20
	case "g", "gb", "gib":
		shift = 30
	default:
		return 0, fmt.Errorf("%q has an unknown unit %q (use B, KiB, MiB or GiB)", s, t[i:])
	}
	if n <= 0 {
		return 0, fmt.Errorf("%q must be positive", s)
	}
	if n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n << shift, nil
}
