package sealing

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Metrics are served on the API server's /metrics. They carry no names of
// SealedSecrets, let alone values.
var (
	unsealed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fjord_sealing_unseals_total",
		Help: "SealedSecrets processed, by result (ok, failed).",
	}, []string{"result"})
	keysGenerated = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fjord_sealing_keys_generated_total",
		Help: "Sealing keys generated (first start and rotations).",
	})
	keysLoaded = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "fjord_sealing_keys",
		Help: "Sealing keys able to decrypt.",
	})
)

func init() {
	legacyregistry.RawMustRegister(unsealed, keysGenerated, keysLoaded)
}
