package fsyncgate

import (
	"regexp"
	"strings"
	"testing"
)

func TestFSName(t *testing.T) {
	for _, tt := range []struct {
		name  string
		magic uint32
		want  string
	}{
		{name: "ext4 shares its magic with ext2 and ext3", magic: 0xef53, want: "ext4"},
		{name: "xfs is known", magic: 0x58465342, want: "xfs"},
		{name: "tmpfs is known", magic: 0x01021994, want: "tmpfs"},
		{name: "a magic above 2^31 is known", magic: 0xff534d42, want: "cifs"},
		{name: "an unknown magic is printed in hex", magic: 0x1234, want: "0x1234"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := fsName(tt.magic); got != tt.want {
				t.Errorf("fsName(%#x) = %q; want %q", tt.magic, got, tt.want)
			}
		})
	}
}

func TestOverlayUpperDir(t *testing.T) {
	const mountinfo = `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:26 / /run rw,nosuid shared:5 - tmpfs tmpfs rw,size=1000k
40 22 0:40 / /var/lib/fjord rw,relatime - overlay overlay rw,lowerdir=/lower,upperdir=/run/upper\040dir,workdir=/run/work
41 40 0:41 / /var/lib/fjord/db/data rw,relatime - ext4 /dev/vdb rw
`
	for _, tt := range []struct {
		name, path, want string
		ok               bool
	}{
		{name: "a path in an overlay gives its unescaped upper directory", path: "/var/lib/fjord/db", want: "/run/upper dir", ok: true},
		{name: "the overlay's mount point itself is in it", path: "/var/lib/fjord", want: "/run/upper dir", ok: true},
		{name: "a mount on top of the overlay hides it", path: "/var/lib/fjord/db/data/member", ok: false},
		{name: "a sibling with a common prefix is not in it", path: "/var/lib/fjord2", ok: false},
		{name: "a path on a plain filesystem has no upper directory", path: "/etc", ok: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := overlayUpperDir(strings.NewReader(mountinfo), tt.path)
			if got != tt.want || ok != tt.ok {
				t.Errorf("overlayUpperDir(%q) = %q, %v; want %q, %v", tt.path, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestStatFS(t *testing.T) {
	t.Run("a real directory has a device and a filesystem", func(t *testing.T) {
		info, err := statFS(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^\d+:\d+$`).MatchString(info.device) || info.fsType == "" {
			t.Errorf("statFS = %+v", info)
		}
		if info.nonDurable != (info.fsType == "tmpfs" || info.fsType == "ramfs" || strings.HasSuffix(info.fsType, "on tmpfs")) {
			t.Errorf("non-durable %v on %s", info.nonDurable, info.fsType)
		}
	})
	t.Run("a missing directory is an error naming it", func(t *testing.T) {
		dir := t.TempDir() + "/missing"
		if _, err := statFS(dir); err == nil || !strings.Contains(err.Error(), dir) {
			t.Errorf("statFS(missing) error %v", err)
		}
	})
}
