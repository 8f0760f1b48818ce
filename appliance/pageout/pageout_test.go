package pageout

import (
	"strings"
	"testing"
)

func TestReadOnlyMappings(t *testing.T) {
	maps := `00400000-0311c000 r--p 00000000 fe:00 1234 /usr/local/bin/fjord
0311c000-08c61000 r-xp 02d1c000 fe:00 1234 /usr/local/bin/fjord
12a2e000-12a32000 rw-p 1262d000 fe:00 1234 /usr/local/bin/fjord
12a32000-12b00000 rw-p 00000000 00:00 0
7f0000000000-7f0000001000 r--p 00000000 fe:00 99 /usr/local/bin/fjord old
7f0000002000-7f0000003000 r-xp 00000000 fe:00 98 /usr/lib/x86_64-linux-gnu/libc.so.6
`
	t.Run("keeps the binary's read-only mappings only", func(t *testing.T) {
		got, err := readOnlyMappings(strings.NewReader(maps), "/usr/local/bin/fjord")
		if err != nil {
			t.Fatal(err)
		}
		want := [][2]uintptr{{0x400000, 0x311c000}, {0x311c000, 0x8c61000}}
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("got %#x, want %#x", got, want)
		}
	})
	t.Run("matches a path with a space whole", func(t *testing.T) {
		got, err := readOnlyMappings(strings.NewReader(maps), "/usr/local/bin/fjord old")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != [2]uintptr{0x7f0000000000, 0x7f0000001000} {
			t.Errorf("got %#x", got)
		}
	})
}

func TestExecutable(t *testing.T) {
	n, err := Executable()
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Error("advised nothing: the test binary's code is a read-only mapping")
	}
}
