package appliance

import (
	"bufio"
	"errors"
	"net"
	"os"
	"strings"
)

// DetectNodeIP returns the first IPv4 address of the interface that holds the
// default route, or of the first interface that is up and not loopback.
func DetectNodeIP() (net.IP, error) {
	var candidates []net.Interface
	if name := defaultRouteInterface(); name != "" {
		if iface, err := net.InterfaceByName(name); err == nil {
			candidates = append(candidates, *iface)
		}
	}
	all, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	candidates = append(candidates, all...)
	for _, iface := range candidates {
		if iface.Flags&net.FlagUp == 0 || iface.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
				return n.IP.To4(), nil
			}
		}
	}
	return nil, errors.New("no non-loopback IPv4 address found")
}

func defaultRouteInterface() string {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 2 && fields[1] == "00000000" {
			return fields[0]
		}
	}
	return ""
}
