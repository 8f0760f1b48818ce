package sealing

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
)

// maxBody bounds what /v1/verify and /v1/rotate read.
const maxBody = 1 << 20

// handler serves kubeseal's API: /v1/cert.pem, /v1/verify, /v1/rotate and
// /healthz. Only this host may call it: the API server's service proxy,
// which runs in this process, and local tools. kubeseal reaches it
// through the proxy, so the API server's authentication and RBAC
// (services/proxy in kube-system) stand in front of it.
func (c *Controller) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /v1/cert.pem", func(w http.ResponseWriter, _ *http.Request) {
		k := c.ring.Active()
		if k == nil {
			http.Error(w, "no sealing key", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(k.CertPEM())
	})
	mux.HandleFunc("POST /v1/verify", func(w http.ResponseWriter, r *http.Request) {
		ss, err := readSealedSecret(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := Verify(ss, c.ring.Private()); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("POST /v1/rotate", func(w http.ResponseWriter, r *http.Request) {
		ss, err := readSealedSecret(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out, err := c.reseal(ss)
		if err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
	return localOnly(mux)
}

// reseal decrypts ss (without rendering its template, so the endpoint is
// no decryption oracle) and seals it again for the active key.
func (c *Controller) reseal(ss *SealedSecret) (*SealedSecret, error) {
	secret, err := unseal(ss, c.ring.Private(), false)
	if err != nil {
		return nil, err
	}
	active := c.ring.Active()
	if active == nil {
		return nil, errors.New("no sealing key")
	}
	out, err := Seal(rand.Reader, &active.Private.PublicKey, secret, ss.Scope())
	if err != nil {
		return nil, err
	}
	out.Spec.Template.Data = ss.Spec.Template.Data
	out.Labels, out.Annotations = ss.Labels, ss.Annotations
	return out, nil
}

func readSealedSecret(r *http.Request) (*SealedSecret, error) {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("reading the request: %w", err)
	}
	return ReadSealedSecret(b)
}

// localOnly refuses requests from other hosts.
func localOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil || !isLocal(net.ParseIP(host)) {
			http.Error(w, "forbidden: use the API server's service proxy", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isLocal reports whether ip is loopback or one of this host's addresses.
func isLocal(ip net.IP) bool {
	if ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}
