// Package fsyncgate measures fdatasync latency on the datastore's disk and
// refuses to start the server on a disk too slow for etcd.
//
// # Workload
//
// The measurement is the one etcd's hardware guidance runs with fio:
//
//	fio --rw=write --ioengine=sync --fdatasync=1 --directory=DIR --size=22m --bs=2300
//
// A temporary file is created in the directory and preallocated to the full
// size with fallocate(2) (mode 0), as fio does by default; then blocks of
// BlockSize bytes are written sequentially with write(2), each followed by
// fdatasync(2), until Size bytes (rounded down to whole blocks, like fio) are
// written. The latency of each fdatasync call is one sample, the number fio
// reports as its "sync" latency percentiles. The file is removed afterwards,
// also on error and cancellation.
//
// Percentiles are nearest-rank: the q-quantile of n sorted samples is the
// ⌈q·n⌉-th smallest, the value fio reports up to the width of its histogram
// buckets.
//
// # Early stop
//
// A full run takes about 10 000 fdatasyncs: half a second on NVMe, half a
// minute on a mediocre virtual disk. Most disks are clearly fast or clearly
// slow long before that, so the measurement stops as soon as the verdict is
// statistically clear.
//
// The confidence interval of the p99 is distribution-free, from order
// statistics: the number K of samples above the true p99 is Binomial(n, 0.01)
// whatever the latency distribution. The k-th largest sample is an upper
// bound of the p99 with confidence 1-α when P(K ≤ k-1) ≤ α, and a lower bound
// when P(K ≤ k-1) ≥ 1-α. The binomial tail is summed exactly (in log space),
// not approximated by a normal distribution, which is poor this far into the
// tail.
//
// The interval is checked after MinSamples samples (300 by default; fewer say
// nothing about a p99) and every 100 samples after that. The run stops with
// pass when the upper bound is at most the limit and with fail when the lower
// bound is above it. Because the interval is looked at many times, α is split
// evenly over the looks a full run could take (Bonferroni), so the chance
// that an early verdict differs from the true p99's is at most 1-Confidence
// (1 % by default) over the whole run. In practice a disk whose every
// fdatasync beats the limit passes after 1 000 samples, and one whose every
// fdatasync misses it fails after 300.
//
// A run that reaches Size or the time cap (MaxDuration) without a clear
// interval decides by the point estimate and marks the report Inconclusive.
//
// # The gate
//
// [Run] is what the server calls before the datastore writes anything: it
// skips when off, reuses a recent pass from its cache file, measures, and
// then returns a [*FailedError] (enforce) or logs a warning (warn) when the
// p99 exceeds the limit. See [Run] for the exact contract.
package fsyncgate
