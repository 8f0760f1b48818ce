package gitops

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Metrics are served on the API server's /metrics (the process's registry).
var (
	syncTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fjord_gitops_syncs_total",
		Help: "Syncs of Applications, by result (succeeded, failed).",
	}, []string{"application", "result"})
	syncDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "fjord_gitops_sync_duration_seconds",
		Help:    "Time from fetch to status of a sync.",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
	}, []string{"application"})
	driftCorrections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fjord_gitops_drift_corrections_total",
		Help: "Objects re-applied because someone else changed or deleted them.",
	}, []string{"application"})
	lastRevision = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "fjord_gitops_last_synced_revision_info",
		Help: "The revision each Application last synced (value 1).",
	}, []string{"application", "revision"})
)

func init() {
	legacyregistry.RawMustRegister(syncTotal, syncDuration, driftCorrections, lastRevision)
}
