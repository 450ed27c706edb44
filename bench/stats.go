package main

import (
	"math"
	"slices"
)

// Summary is the spread of one case's runs.
type Summary struct {
	N      int     `json:"n"`
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

// summarize returns the min, median and max of xs (the mean of the middle
// two for an even count). NaNs, from runs that failed, are left out.
func summarize(xs []float64) Summary {
	v := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return Summary{}
	}
	slices.Sort(v)
	s := Summary{N: len(v), Min: v[0], Max: v[len(v)-1]}
	if n := len(v); n%2 == 1 {
		s.Median = v[n/2]
	} else {
		s.Median = (v[n/2-1] + v[n/2]) / 2
	}
	return s
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest sample with at least p% of the samples at
// or below it. It is a sample that was measured, never an interpolation.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// RatioSpec names a ratio of two cases' median delivered rates.
type RatioSpec struct {
	Name     string `json:"name"`
	Num, Den string `json:"-"` // case IDs
	// Why says what the ratio tells a reader.
	Why string `json:"-"`
}

// Ratio is a computed RatioSpec.
type Ratio struct {
	Name  string  `json:"name"`
	Num   string  `json:"num"`
	Den   string  `json:"den"`
	Value float64 `json:"value"`
	Why   string  `json:"why"`
}

// ratios computes every spec whose two cases both have a positive median.
func ratios(cases []CaseResult, specs []RatioSpec) []Ratio {
	med := map[string]float64{}
	for _, c := range cases {
		med[c.ID] = c.Delivered.Median
	}
	var out []Ratio
	for _, s := range specs {
		n, d := med[s.Num], med[s.Den]
		if n <= 0 || d <= 0 {
			continue
		}
		out = append(out, Ratio{Name: s.Name, Num: s.Num, Den: s.Den, Value: n / d, Why: s.Why})
	}
	return out
}
