package gitlabsim

import "math"

// Every generated fact is a pure function of the seed and a few keys, so the
// instance never has to be stored: a list item, a file or a fault decision is
// recomputed the same way whenever it is asked for.

// Salts separate the random streams of unrelated facts about the same object.
const (
	saltGroup uint64 = iota + 1
	saltGroupWeight
	saltProject
	saltProjectID
	saltSpecial
	saltCI
	saltFiles
	saltItems
	saltForbidden
	saltDeleted
	saltFault429
	saltFaultError
	saltFaultTimeout
	saltFaultMalformed
	saltFaultLatency
	saltFaultKind
	saltUser
	saltUserWeight
	saltEnvironments
	saltChange
	saltCIConfigPath
	saltSubmodules
	saltMembers
	saltCIInclude
	saltRename
	saltRemove
)

// mix is the splitmix64 finaliser: cheap and well distributed.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// hash2 and hash3 combine keys into one well-mixed value.
func hash2(a, b uint64) uint64    { return mix(mix(a) ^ b) }
func hash3(a, b, c uint64) uint64 { return mix(hash2(a, b) ^ c) }

// hashString is FNV-1a over s, mixed with h; used for request keys.
func hashString(h uint64, s string) uint64 {
	x := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		x ^= uint64(s[i])
		x *= 1099511628211
	}
	return mix(h ^ x)
}

// unit maps a hash to [0, 1).
func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }

// rng is a splitmix64 stream; a value type so that deriving one costs no allocation.
type rng struct{ s uint64 }

func newRNG(seed int64, key, salt uint64) rng { return rng{s: hash3(uint64(seed), key, salt)} }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (r *rng) float() float64 { return unit(r.next()) }

// intn returns a value in [0, n); n <= 0 gives 0.
func (r *rng) intn(n int) int {
	if n <= 0 {
		return 0
	}
	return int(r.next() % uint64(n))
}

// between returns a value in [lo, hi].
func (r *rng) between(lo, hi int64) int64 {
	if hi <= lo {
		return lo
	}
	return lo + int64(r.next()%uint64(hi-lo+1))
}

func (r *rng) chance(p float64) bool { return r.float() < p }

// normal is a standard normal variate (Box-Muller).
func (r *rng) normal() float64 {
	u1 := r.float()
	if u1 < 1e-300 {
		u1 = 1e-300
	}
	u2 := r.float()
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

// logNormal draws a size with the given median: most values near it, a long tail above.
func (r *rng) logNormal(median, sigma float64) float64 {
	return median * math.Exp(sigma*r.normal())
}

// count draws a log-normal count clamped to [lo, hi].
func (r *rng) count(median, sigma float64, lo, hi int64) int64 {
	v := int64(r.logNormal(median, sigma))
	return min(max(v, lo), hi)
}

// pick returns an index chosen with the given weights.
func (r *rng) pick(weights []float64) int {
	var total float64
	for _, w := range weights {
		total += w
	}
	x := r.float() * total
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}
