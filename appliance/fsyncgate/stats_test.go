package fsyncgate

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	threeHundred := make([]time.Duration, 300)
	for i := range threeHundred {
		threeHundred[i] = time.Duration(i + 1)
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{name: "no samples give zero", sorted: nil, q: 0.99, want: 0},
		{name: "one sample is every quantile", sorted: []time.Duration{7}, q: 0.5, want: 7},
		{name: "the p99 of 100 samples is the 99th", sorted: hundred, q: 0.99, want: 99 * time.Millisecond},
		{name: "the p50 of 100 samples is the 50th", sorted: hundred, q: 0.50, want: 50 * time.Millisecond},
		{name: "the p99.9 of 100 samples is the largest", sorted: hundred, q: 0.999, want: 100 * time.Millisecond},
		{name: "the p99 of 300 samples is the 297th despite float rounding", sorted: threeHundred, q: 0.99, want: 297},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := quantile(tt.sorted, tt.q); got != tt.want {
				t.Errorf("quantile(%g) = %v; want %v", tt.q, got, tt.want)
			}
		})
	}
}

// binomialCDF is P(K ≤ j) for K ~ Binomial(n, p), summed term by term from
// log-gamma: a different route from quantileBounds' recurrence.
func binomialCDF(n, j int, p float64) float64 {
	sum := 0.0
	for k := 0; k <= j; k++ {
		lg := func(x int) float64 { v, _ := math.Lgamma(float64(x) + 1); return v }
		sum += math.Exp(lg(n) - lg(k) - lg(n-k) + float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p))
	}
	return sum
}

func TestQuantileBoundsMatchTheBinomialDefinition(t *testing.T) {
	for _, tt := range []struct {
		name  string
		n     int
		alpha float64
		upper bool // whether an upper bound exists
	}{
		{name: "100 samples have no upper bound at 99%", n: 100, alpha: 0.01},
		{name: "the minimum sample count has no upper bound at the per-look level", n: 300, alpha: 1e-4},
		{name: "a fast disk's stopping point has both bounds", n: 1000, alpha: 1e-4, upper: true},
		{name: "a full run has both bounds", n: 10029, alpha: 1e-4, upper: true},
		{name: "a full run at a loose level has both bounds", n: 10029, alpha: 0.05, upper: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lo, hasLo, hi, hasHi := quantileBounds(tt.n, 0.99, tt.alpha)
			// The definition: rank n-j bounds from above when P(K ≤ j) ≤ alpha
			// (largest j), from below when P(K ≤ j) ≥ 1-alpha (smallest j).
			wantHi, wantHasHi := 0, false
			wantLo, wantHasLo := 0, false
			for j := 0; j < tt.n; j++ {
				c := binomialCDF(tt.n, j, 0.01)
				if c <= tt.alpha {
					wantHi, wantHasHi = tt.n-j, true
				}
				if c >= 1-tt.alpha {
					wantLo, wantHasLo = tt.n-j, true
					break
				}
			}
			if lo != wantLo || hasLo != wantHasLo || hi != wantHi || hasHi != wantHasHi {
				t.Errorf("bounds (%d %v, %d %v); want (%d %v, %d %v)", lo, hasLo, hi, hasHi, wantLo, wantHasLo, wantHi, wantHasHi)
			}
			if hasHi != tt.upper {
				t.Errorf("upper bound exists: %v; want %v", hasHi, tt.upper)
			}
			if hasLo && hasHi && !(lo <= int(math.Ceil(0.99*float64(tt.n))) && hi >= int(0.99*float64(tt.n))) {
				t.Errorf("interval of ranks [%d, %d] does not straddle the p99's rank", lo, hi)
			}
		})
	}
}

// TestQuantileBoundsCover draws many samples from a known distribution and
// checks that each bound is wrong at most about alpha of the time.
func TestQuantileBoundsCover(t *testing.T) {
	const (
		trials = 4000
		n      = 500
		alpha  = 0.05
	)
	rng := rand.New(rand.NewPCG(1, 2))
	truth := time.Duration(0.99 * float64(time.Second)) // the p99 of uniform [0, 1s)
	var upperWrong, lowerWrong int
	samples := make([]time.Duration, n)
	for range trials {
		for i := range samples {
			samples[i] = time.Duration(rng.Float64() * float64(time.Second))
		}
		slices.Sort(samples)
		iv := p99Interval(samples, alpha)
		if iv.Upper == 0 {
			t.Fatal("no upper bound from 500 samples at 95%")
		}
		if iv.Upper < truth {
			upperWrong++
		}
		if iv.Lower > truth {
			lowerWrong++
		}
	}
	// alpha plus three standard errors of the estimate.
	limit := alpha + 3*math.Sqrt(alpha*(1-alpha)/trials)
	for name, wrong := range map[string]int{"upper": upperWrong, "lower": lowerWrong} {
		if rate := float64(wrong) / trials; rate > limit {
			t.Errorf("%s bound wrong in %.1f%% of trials; want at most %.0f%%", name, rate*100, alpha*100)
		}
	}
}

func TestLooks(t *testing.T) {
	for _, tt := range []struct {
		name             string
		max, min, expect int
	}{
		{name: "a full default run looks 99 times", max: 10029, min: 300, expect: 99},
		{name: "a run shorter than the minimum looks once", max: 28, min: 300, expect: 1},
		{name: "a run of exactly one interval more looks twice", max: 400, min: 300, expect: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := looks(tt.max, tt.min); got != tt.expect {
				t.Errorf("looks(%d, %d) = %d; want %d", tt.max, tt.min, got, tt.expect)
			}
		})
	}
}
