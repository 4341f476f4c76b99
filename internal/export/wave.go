package export

// waves layers a dependency graph into migration waves: a node's wave is 1 + the
// highest wave among the nodes it depends on (adj[i] lists i's dependencies), 1 for a
// node without any. The nodes of a cycle (a strongly connected component: projects
// that depend on each other, directly or not) share one wave, computed as for a single
// node. The layering is unique, so it does not depend on the order of nodes or edges.
func waves(adj [][]int) []int {
	t := tarjan{adj: adj, index: make([]int, len(adj)), low: make([]int, len(adj)),
		onStack: make([]bool, len(adj)), wave: make([]int, len(adj))}
	for i := range adj {
		if t.index[i] == 0 {
			t.visit(i)
		}
	}
	return t.wave
}

// tarjan finds strongly connected components; it emits each after every component it
// depends on, so a component's wave is computed from waves already known.
type tarjan struct {
	adj        [][]int
	index, low []int // index 0: not visited yet
	onStack    []bool
	stack      []int
	next       int
	wave       []int
}

func (t *tarjan) visit(v int) {
	t.next++
	t.index[v], t.low[v] = t.next, t.next
	t.stack = append(t.stack, v)
	t.onStack[v] = true
	for _, w := range t.adj[v] {
		switch {
		case t.index[w] == 0:
			t.visit(w)
			t.low[v] = min(t.low[v], t.low[w])
		case t.onStack[w]:
			t.low[v] = min(t.low[v], t.index[w])
		}
	}
	if t.low[v] != t.index[v] {
		return
	}
	i := len(t.stack) - 1 // v roots the component on top of the stack
	for t.stack[i] != v {
		i--
	}
	comp := t.stack[i:]
	t.stack = t.stack[:i]
	for _, n := range comp {
		t.onStack[n] = false
	}
	// Members are still 0 here, so edges inside the component add nothing.
	wave := 1
	for _, n := range comp {
		for _, w := range t.adj[n] {
			wave = max(wave, t.wave[w]+1)
		}
	}
	for _, n := range comp {
		t.wave[n] = wave
	}
}
