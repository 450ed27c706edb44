package sched

import (
	"slices"
	"testing"
)

func TestRR(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
		want    []int
	}{
		{"cycles", []int{1, 1, 1}, []int{0, 1, 2, 0, 1, 2, 0}},
		{"ignores weight values", []int{5, 1}, []int{0, 1, 0, 1}},
		{"skips weight 0", []int{1, 0, 3, 0}, []int{0, 2, 0, 2, 0}},
		{"leading weight 0", []int{0, 0, 7}, []int{2, 2, 2}},
		{"single", []int{1}, []int{0, 0}},
		{"all zero", []int{0, 0}, []int{-1, -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustNew(t, "rr", dests(tt.weights...))
			if got := picks(s, len(tt.want), nil); !slices.Equal(got, tt.want) {
				t.Fatalf("picks = %v, want %v", got, tt.want)
			}
		})
	}
}
