package appliance

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/fjord-dev/fjord/appliance/fsyncgate"
)

// The fsync gate's last measurement, on the API server's /metrics.
var (
	fsyncP99 = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "fjord_fsync_gate_p99_seconds",
		Help: "p99 fdatasync latency the fsync gate judged the datastore's disk by at start (or cached): the measured p99 times the margin that makes it read like fio.",
	})
	fsyncRawP99 = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "fjord_fsync_gate_raw_p99_seconds",
		Help: "p99 fdatasync latency the fsync gate measured on the datastore's disk at start (or cached), before its margin.",
	})
	fsyncLimit = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "fjord_fsync_gate_limit_seconds",
		Help: "The fsync gate's p99 limit (fsync-p99-max).",
	})
	fsyncVerdict = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "fjord_fsync_gate_verdict",
		Help: "The fsync gate's verdict at start (1 for the verdict that applies: pass, fail, non-durable, skipped).",
	}, []string{"verdict"})
)

func init() {
	legacyregistry.RawMustRegister(fsyncP99, fsyncRawP99, fsyncLimit, fsyncVerdict)
}

func recordFsyncGate(res fsyncgate.Result) {
	fsyncP99.Set(res.Report.P99.Seconds())
	fsyncRawP99.Set(res.Report.RawP99.Seconds())
	fsyncLimit.Set(res.Limit.Seconds())
	fsyncVerdict.Reset()
	fsyncVerdict.WithLabelValues(string(res.Verdict)).Set(1)
}
