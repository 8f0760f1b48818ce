// Package fsyncgate measures fdatasync latency on the datastore's disk and
// refuses to start the server on a disk too slow for etcd.
//
// # Workload
//
// The measurement is the one etcd's hardware guidance runs with fio:
//
//	fio --rw=write --ioengine=sync --fdatasync=1 --directory=DIR --size=22m --bs=2300
//
// and it issues the same system calls as fio 3.33 does (checked with strace):
// a new file is created in the directory (fio unlinks and recreates its own)
// and preallocated to the full size with fallocate(2), mode 0, as fio's
// default --fallocate=native does; then blocks of BlockSize bytes are written
// sequentially with write(2), each followed by fdatasync(2), until Size bytes
// (rounded down to whole blocks, like fio) are written. Each fdatasync on the
// preallocated file also commits metadata (the written part of an unwritten
// extent), as fio's does. The latency of each fdatasync call is one sample,
// the number fio reports as its "sync" latency percentiles. The file is
// removed afterwards, also on error and cancellation.
//
// Percentiles are nearest-rank: the q-quantile of n sorted samples is the
// ⌈q·n⌉-th smallest, the value fio reports up to the width of its histogram
// buckets.
//
// # One quiet thread
//
// The same system calls do not take the same time in every process: on a
// virtual machine an fdatasync is several sleeps and wake-ups (the data
// write, the journal commit, the cache flush), and how long a wake-up takes
// depends on what else the process and the machine do. Measured in the
// server's own process, Fjord read fio's p50 at about half and its p99 up to
// five times lower (issue 14), for two reasons:
//
//   - The Go runtime's monitor thread (sysmon) checks, from every 20µs,
//     whether to take the P from a goroutine in a system call; around a
//     goroutine doing fdatasyncs it woke about twice per fdatasync. That
//     keeps the virtual CPU from idling, so the wake-ups that fio's idle CPU
//     pays for are free. A C loop with a second thread that sleeps 20µs at a
//     time reads as low as the Go loop; without it, as fio.
//   - fio runs its job in a new session (setsid). With autogroup scheduling,
//     on by default, a session is a scheduling group of its own, and under
//     CPU load how long a task waits to run after each wake-up depends on
//     its group.
//
// So Measure does not measure in the calling process. It re-executes a
// child (`fjord preflight fsync --child`, see ServeChild) in a new session,
// with GOMAXPROCS=1, no garbage collector and no asynchronous preemption,
// and passes it the test file. The child writes and fdatasyncs with raw
// system calls, which the runtime does not see, so the monitor thread backs
// off to sleeping up to 10ms at a time, about as often as fio's main process
// wakes (every 10ms). docs/benchmarks.md has the figures.
//
// # Margin
//
// What difference remains is measured with e2e/bench/fsync and applied as a
// margin: the measured p99 and its bounds are multiplied by DefaultMargin
// before they are compared with the limit. Reports give both the raw p99
// (RawP99) and the corrected one (P99); messages show the corrected one with
// the raw one beside it, and the server's fjord_fsync_gate_p99_seconds metric
// is the corrected one.
//
// # Verdict
//
// A disk passes when the p99's upper confidence bound (below), times the
// margin, is within the limit: the gate passes only a disk it has shown to be
// fast enough. A run that ends with the interval still containing the limit
// fails and is marked Inconclusive: near the limit another run, or fio, may
// well read above it, and the gate errs on the safe side.
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
// interval fails and is marked Inconclusive (see "Verdict").
//
// # The gate
//
// [Run] is what the server calls before the datastore writes anything: it
// skips when off, reuses a recent pass from its cache file, measures, and
// then returns a [*FailedError] (enforce) or logs a warning (warn) when the
// p99 is not shown within the limit. See [Run] for the exact contract.
package fsyncgate
