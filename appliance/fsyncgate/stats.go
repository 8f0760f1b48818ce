package fsyncgate

import (
	"math"
	"time"
)

// quantile returns the nearest-rank q-quantile of sorted: the ⌈q·n⌉-th
// smallest sample, which is how fio reads its percentiles. It returns 0 for no
// samples.
func quantile(sorted []time.Duration, q float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// The epsilon keeps 0.99·300 (297.00000000000006 in float64) at rank 297.
	k := int(math.Ceil(q*float64(n) - 1e-9))
	k = min(max(k, 1), n)
	return sorted[k-1]
}

// quantileBounds returns 1-based ranks into n sorted samples whose values are
// one-sided confidence bounds of the q-quantile, each wrong with probability
// at most alpha, for any continuous latency distribution.
//
// The number K of samples above the true quantile is Binomial(n, 1-q). The
// sample of rank r is below the quantile exactly when K ≤ n-r, so rank n-j is
// an upper bound when P(K ≤ j) ≤ alpha (largest such j: the tightest bound),
// and a lower bound when P(K ≤ j) ≥ 1-alpha (smallest such j). hasUpper is
// false when even the largest sample is not an upper bound yet (too few
// samples); hasLower when even the smallest is not a lower bound.
func quantileBounds(n int, q, alpha float64) (lower int, hasLower bool, upper int, hasUpper bool) {
	if n <= 0 {
		return 0, false, 0, false
	}
	p := 1 - q // the probability that one sample exceeds the quantile
	logP, logQ := math.Log(p), math.Log(q)
	// log P(K = 0) = n·log q, then P(K = j+1) = P(K = j)·(n-j)/(j+1)·p/q. Summing
	// in log space keeps large n from underflowing P(K = 0) to zero first.
	logPMF := float64(n) * logQ
	cdf := 0.0
	upperJ := -1
	for j := 0; j <= n; j++ {
		cdf += math.Exp(logPMF)
		if cdf <= alpha {
			upperJ = j
		}
		if cdf >= 1-alpha {
			if r := n - j; r >= 1 {
				lower, hasLower = r, true
			}
			break
		}
		logPMF += math.Log(float64(n-j)) - math.Log(float64(j+1)) + logP - logQ
	}
	if upperJ >= 0 {
		upper, hasUpper = n-upperJ, true
	}
	return lower, hasLower, upper, hasUpper
}

// ciCheckEvery is how many samples pass between two looks at the confidence
// interval once MinSamples are in.
const ciCheckEvery = 100

// looks returns how many times a run of at most maxSamples samples looks at
// the confidence interval, so that alpha can be split over them.
func looks(maxSamples, minSamples int) int {
	if maxSamples <= minSamples {
		return 1
	}
	return (maxSamples-minSamples+ciCheckEvery-1)/ciCheckEvery + 1
}

// interval is a confidence interval of the p99. A zero Lower means no lower
// bound (the smallest sample is not one yet); a zero Upper means no upper
// bound.
type interval struct {
	Lower, Upper time.Duration
}

// p99Interval returns the confidence interval of the p99 of sorted.
func p99Interval(sorted []time.Duration, alpha float64) interval {
	lo, hasLo, hi, hasHi := quantileBounds(len(sorted), 0.99, alpha)
	var iv interval
	if hasLo {
		iv.Lower = sorted[lo-1]
	}
	if hasHi {
		iv.Upper = sorted[hi-1]
	}
	return iv
}

// clearPass reports whether the interval lies at or below limit.
func (iv interval) clearPass(limit time.Duration) bool {
	return iv.Upper > 0 && iv.Upper <= limit
}

// clearFail reports whether the interval lies above limit.
func (iv interval) clearFail(limit time.Duration) bool {
	return iv.Lower > limit
}
