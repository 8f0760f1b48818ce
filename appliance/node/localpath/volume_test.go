package localpath

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
)

const node = "node-1"

// newProvisioner returns an initialised provisioner whose storage dir is
// in a fresh temporary directory.
func newProvisioner(t *testing.T) *Provisioner {
	t.Helper()
	p := New(Default(), Runtime{DataDir: t.TempDir(), NodeName: node, Log: slog.New(slog.DiscardHandler)})
	if err := p.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	return p
}

func claim(size string, mutate ...func(*corev1.PersistentVolumeClaim)) *corev1.PersistentVolumeClaim {
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "data-db-0", UID: "1234"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		},
	}
	for _, m := range mutate {
		m(pvc)
	}
	return pvc
}

func options(pvc *corev1.PersistentVolumeClaim, selected string) controller.ProvisionOptions {
	return controller.ProvisionOptions{StorageClass: Class(), PVName: "pvc-1234", PVC: pvc, SelectedNodeName: selected}
}

func TestProvision(t *testing.T) {
	retain := Class()
	retain.ReclaimPolicy = ptr.To(corev1.PersistentVolumeReclaimRetain)
	for _, tc := range []struct {
		name     string
		opts     controller.ProvisionOptions
		wantErr  []string // substrings of the error; none means success
		wantMode []corev1.PersistentVolumeAccessMode
		wantPol  corev1.PersistentVolumeReclaimPolicy
	}{{
		name:     "makes the claim's directory and a volume bound to this node",
		opts:     options(claim("1Mi"), node),
		wantMode: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		wantPol:  corev1.PersistentVolumeReclaimDelete,
	}, {
		name: "provisions for an Immediate class, which selects no node",
		opts: options(claim("1Mi", func(c *corev1.PersistentVolumeClaim) {
			c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany, corev1.ReadWriteOncePod}
		}), ""),
		wantMode: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany, corev1.ReadWriteOncePod},
		wantPol:  corev1.PersistentVolumeReclaimDelete,
	}, {
		name:     "takes the reclaim policy from the class",
		opts:     controller.ProvisionOptions{StorageClass: retain, PVName: "pvc-1234", PVC: claim("1Mi"), SelectedNodeName: node},
		wantMode: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		wantPol:  corev1.PersistentVolumeReclaimRetain,
	}, {
		name:    "refuses a node other than its own",
		opts:    options(claim("1Mi"), "node-2"),
		wantErr: []string{`"node-1"`, `"node-2"`, "shop/data-db-0"},
	}, {
		name:    "refuses a claim larger than the free space, naming requested and free",
		opts:    options(claim("1Ei"), node),
		wantErr: []string{"not enough space in ", "shop/data-db-0", "requested 1Ei (1152921504606846976 bytes)", "free ", " bytes)"},
	}, {
		name: "refuses a raw block claim",
		opts: options(claim("1Mi", func(c *corev1.PersistentVolumeClaim) {
			c.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeBlock)
		}), node),
		wantErr: []string{"raw block"},
	}, {
		name: "refuses a claim with a label selector",
		opts: options(claim("1Mi", func(c *corev1.PersistentVolumeClaim) {
			c.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"disk": "fast"}}
		}), node),
		wantErr: []string{"selector"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProvisioner(t)
			dir := filepath.Join(p.dir, "pvc-1234_shop_data-db-0")
			pv, state, err := p.Provision(t.Context(), tc.opts)
			if state != controller.ProvisioningFinished {
				t.Errorf("state = %s, want %s", state, controller.ProvisioningFinished)
			}
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Provision succeeded, want an error")
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				if strings.Contains(err.Error(), "not enough space") && !strings.Contains(err.Error(), p.dir) {
					t.Errorf("error %q does not name the storage dir %s", err, p.dir)
				}
				if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("a refused claim left %s behind (%v)", dir, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			info, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !info.IsDir() || info.Mode().Perm() != 0o777 {
				t.Errorf("%s: mode %s, want a directory with 0777", dir, info.Mode())
			}
			if pv.Name != "pvc-1234" {
				t.Errorf("name = %q, want pvc-1234", pv.Name)
			}
			if got := pv.Spec.Capacity[corev1.ResourceStorage]; got.Cmp(resource.MustParse("1Mi")) != 0 {
				t.Errorf("capacity = %s, want 1Mi", got.String())
			}
			if pv.Spec.Local == nil || pv.Spec.Local.Path != dir {
				t.Errorf("local volume source = %+v, want path %s", pv.Spec.Local, dir)
			}
			if pv.Annotations[AnnotationPath] != dir {
				t.Errorf("annotation %s = %q, want %s", AnnotationPath, pv.Annotations[AnnotationPath], dir)
			}
			if got := affinityNodes(pv); len(got) != 1 || got[0] != node {
				t.Errorf("node affinity names %v, want [%s]", got, node)
			}
			if !equalModes(pv.Spec.AccessModes, tc.wantMode) {
				t.Errorf("access modes = %v, want %v", pv.Spec.AccessModes, tc.wantMode)
			}
			if pv.Spec.PersistentVolumeReclaimPolicy != tc.wantPol {
				t.Errorf("reclaim policy = %s, want %s", pv.Spec.PersistentVolumeReclaimPolicy, tc.wantPol)
			}
			if pv.Spec.VolumeMode == nil || *pv.Spec.VolumeMode != corev1.PersistentVolumeFilesystem {
				t.Errorf("volume mode = %v, want Filesystem", pv.Spec.VolumeMode)
			}
		})
	}
}

func equalModes(a, b []corev1.PersistentVolumeAccessMode) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestProvisionAgain(t *testing.T) {
	t.Run("reuses the directory, and its content, when the library retries", func(t *testing.T) {
		p := newProvisioner(t)
		opts := options(claim("1Mi"), node)
		pv, _, err := p.Provision(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(pv.Spec.Local.Path, "keep")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		again, _, err := p.Provision(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if again.Spec.Local.Path != pv.Spec.Local.Path {
			t.Errorf("path = %s, want %s", again.Spec.Local.Path, pv.Spec.Local.Path)
		}
		if _, err := os.Stat(file); err != nil {
			t.Errorf("the retry lost the volume's content: %v", err)
		}
	})
}

func TestDelete(t *testing.T) {
	local := func(path string) *corev1.PersistentVolume {
		return &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pvc-1234"},
			Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: path}}}}
	}
	for _, tc := range []struct {
		name string
		// pv is the volume to delete given the storage dir and a directory
		// outside it.
		pv          func(dir, outside string) *corev1.PersistentVolume
		wantErr     string
		wantIgnored bool
		// gone is the path that must not exist afterwards, kept the one that must.
		gone, kept func(dir, outside string) string
	}{{
		name: "removes the volume's directory with its content",
		pv:   func(dir, _ string) *corev1.PersistentVolume { return local(filepath.Join(dir, "vol")) },
		gone: func(dir, _ string) string { return filepath.Join(dir, "vol") },
		kept: func(dir, _ string) string { return dir },
	}, {
		name: "succeeds when the directory is already gone",
		pv:   func(dir, _ string) *corev1.PersistentVolume { return local(filepath.Join(dir, "never-made")) },
		kept: func(dir, _ string) string { return filepath.Join(dir, "vol") },
	}, {
		name: "removes the directory of a k3s hostPath volume",
		pv: func(dir, _ string) *corev1.PersistentVolume {
			return &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pvc-1234"},
				Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{
					HostPath: &corev1.HostPathVolumeSource{Path: filepath.Join(dir, "vol")}}}}
		},
		gone: func(dir, _ string) string { return filepath.Join(dir, "vol") },
	}, {
		name:    "refuses a path outside the storage directory",
		pv:      func(_, outside string) *corev1.PersistentVolume { return local(outside) },
		wantErr: "not a directory inside the local-path storage directory",
		kept:    func(_, outside string) string { return outside },
	}, {
		name: "refuses a path that climbs out of the storage directory",
		pv: func(dir, outside string) *corev1.PersistentVolume {
			return local(dir + "/../" + filepath.Base(outside))
		},
		wantErr: "not a directory inside the local-path storage directory",
		kept:    func(_, outside string) string { return outside },
	}, {
		name:    "refuses the storage directory itself",
		pv:      func(dir, _ string) *corev1.PersistentVolume { return local(dir + "/") },
		wantErr: "not a directory inside the local-path storage directory",
		kept:    func(dir, _ string) string { return filepath.Join(dir, "vol") },
	}, {
		name:    "refuses a relative path",
		pv:      func(_, _ string) *corev1.PersistentVolume { return local("vol") },
		wantErr: "not a directory inside the local-path storage directory",
	}, {
		name: "ignores a volume of another node",
		pv: func(dir, _ string) *corev1.PersistentVolume {
			pv := local(filepath.Join(dir, "vol"))
			pv.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{"node-2"}}}}}}}
			return pv
		},
		wantIgnored: true,
		kept:        func(dir, _ string) string { return filepath.Join(dir, "vol") },
	}, {
		name: "ignores a volume that is not a directory",
		pv: func(_, _ string) *corev1.PersistentVolume {
			return &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "nfs"},
				Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nas", Path: "/"}}}}
		},
		wantIgnored: true,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProvisioner(t)
			outside := filepath.Join(filepath.Dir(p.dir), "outside")
			for _, d := range []string{filepath.Join(p.dir, "vol"), outside} {
				if err := os.Mkdir(d, 0o777); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(d, "data"), []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := p.Delete(t.Context(), tc.pv(p.dir, outside))
			var ignored *controller.IgnoredError
			switch {
			case tc.wantIgnored:
				if !errors.As(err, &ignored) {
					t.Errorf("error = %v, want an IgnoredError", err)
				}
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error = %v, want one containing %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			}
			if tc.gone != nil {
				if _, err := os.Lstat(tc.gone(p.dir, outside)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s is still there (%v)", tc.gone(p.dir, outside), err)
				}
			}
			if tc.kept != nil {
				if _, err := os.Lstat(tc.kept(p.dir, outside)); err != nil {
					t.Errorf("%s was removed: %v", tc.kept(p.dir, outside), err)
				}
			}
		})
	}
}

func TestProvisionThenDelete(t *testing.T) {
	t.Run("deletes what it provisioned, twice without error", func(t *testing.T) {
		p := newProvisioner(t)
		pv, _, err := p.Provision(t.Context(), options(claim("1Mi"), node))
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := p.Delete(t.Context(), pv); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := os.Lstat(pv.Spec.Local.Path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there (%v)", pv.Spec.Local.Path, err)
		}
	})
}

func TestClass(t *testing.T) {
	t.Run("is the default class, k3s's provisioner, deleted with the claim, bound on first consumer", func(t *testing.T) {
		c := Class()
		if c.Name != "local-path" || c.Annotations["storageclass.kubernetes.io/is-default-class"] != "true" ||
			c.Provisioner != "rancher.io/local-path" ||
			*c.ReclaimPolicy != corev1.PersistentVolumeReclaimDelete ||
			*c.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
			t.Errorf("class = %+v", c)
		}
	})
}
