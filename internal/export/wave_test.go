package export

import (
	"slices"
	"testing"
)

func TestWaves(t *testing.T) {
	tests := []struct {
		name string
		adj  [][]int // adj[i]: what i depends on
		want []int
	}{
		{"none", nil, []int{}},
		{"independent", [][]int{{}, {}}, []int{1, 1}},
		{"chain", [][]int{{1}, {2}, {}}, []int{3, 2, 1}},
		{"chain, other order", [][]int{{}, {0}, {1}}, []int{1, 2, 3}},
		{"diamond", [][]int{{1, 2}, {3}, {3}, {}}, []int{3, 2, 2, 1}},
		{"longest path wins", [][]int{{1, 3}, {2}, {3}, {}}, []int{4, 3, 2, 1}},
		{"self loop", [][]int{{0}}, []int{1}},
		{"cycle", [][]int{{1}, {0}}, []int{1, 1}},
		{"cycle on a base, with a dependant", [][]int{{1, 2}, {0}, {}, {0}}, []int{2, 2, 1, 3}},
		{"two cycles in a chain", [][]int{{1}, {0, 2}, {3}, {2}}, []int{2, 2, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := waves(tt.adj); !slices.Equal(got, tt.want) {
				t.Errorf("waves(%v) = %v, want %v", tt.adj, got, tt.want)
			}
		})
	}
}

// TestWavesDeepChain: a long chain neither overflows nor takes quadratic time.
func TestWavesDeepChain(t *testing.T) {
	const n = 100_000
	adj := make([][]int, n)
	for i := range n - 1 {
		adj[i] = []int{i + 1} // visiting 0 first goes n deep
	}
	w := waves(adj)
	if w[n-1] != 1 || w[0] != n {
		t.Errorf("waves of a %d-chain: first %d, last %d", n, w[0], w[n-1])
	}
}
