package metrics

import (
	"math"
	"os"
	"runtime"
	"testing"
	"testing/fstest"
)

const gib = 1 << 30

func files(kv ...string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for i := 0; i+1 < len(kv); i += 2 {
		fsys[kv[i]] = &fstest.MapFile{Data: []byte(kv[i+1])}
	}
	return fsys
}

const meminfo16G = "MemTotal:       16777216 kB\nMemFree:         1000 kB\n"

func TestMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fsys    fstest.MapFS
		goLimit int64
		want    float64
	}{
		{"GOMEMLIMIT wins", files("sys/fs/cgroup/memory.max", "1073741824\n", "proc/meminfo", meminfo16G), 512 << 20, 512 << 20},
		{"GOMEMLIMIT unset: cgroup v2", files("sys/fs/cgroup/memory.max", "1073741824\n", "proc/meminfo", meminfo16G), math.MaxInt64, gib},
		{"cgroup v2 max: RAM", files("sys/fs/cgroup/memory.max", "max\n", "proc/meminfo", meminfo16G), math.MaxInt64, 16 * gib},
		{"cgroup v2 nested: tightest ancestor", files(
			"proc/self/cgroup", "0::/system.slice/agent.service\n",
			"sys/fs/cgroup/system.slice/agent.service/memory.max", "max\n",
			"sys/fs/cgroup/system.slice/memory.max", "2147483648\n",
			"proc/meminfo", meminfo16G), math.MaxInt64, 2 * gib},
		{"cgroup v1", files("sys/fs/cgroup/memory/memory.limit_in_bytes", "3221225472\n", "proc/meminfo", meminfo16G), math.MaxInt64, 3 * gib},
		{"cgroup v1 unlimited: RAM", files("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n", "proc/meminfo", meminfo16G), math.MaxInt64, 16 * gib},
		{"cgroup above RAM: RAM", files("sys/fs/cgroup/memory.max", "68719476736\n", "proc/meminfo", meminfo16G), math.MaxInt64, 16 * gib},
		{"no cgroup: RAM", files("proc/meminfo", meminfo16G), math.MaxInt64, 16 * gib},
		{"cgroup, no meminfo", files("sys/fs/cgroup/memory.max", "1073741824"), math.MaxInt64, gib},
		{"nothing known", files(), math.MaxInt64, 0},
		{"garbage", files("sys/fs/cgroup/memory.max", "lots", "proc/meminfo", "MemTotal: many kB"), math.MaxInt64, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := memoryLimit(tc.fsys, tc.goLimit); got != tc.want {
				t.Errorf("memoryLimit = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCPULimit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fsys   fstest.MapFS
		numCPU int
		want   float64
	}{
		{"cgroup v2 quota", files("sys/fs/cgroup/cpu.max", "150000 100000\n"), 8, 1.5},
		{"cgroup v2 max", files("sys/fs/cgroup/cpu.max", "max 100000\n"), 8, 8},
		{"cgroup v2 quota above CPUs", files("sys/fs/cgroup/cpu.max", "1600000 100000\n"), 8, 8},
		{"cgroup v2 nested", files(
			"proc/self/cgroup", "0::/kubepods/pod1/ctr\n",
			"sys/fs/cgroup/kubepods/pod1/ctr/cpu.max", "max 100000\n",
			"sys/fs/cgroup/kubepods/pod1/cpu.max", "50000 100000\n"), 8, 0.5},
		{"cgroup v1 quota", files("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "200000\n", "sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n"), 8, 2},
		{"cgroup v1 cpu,cpuacct", files("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "50000", "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000"), 8, 0.5},
		{"cgroup v1 unlimited", files("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n", "sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n"), 4, 4},
		{"no cgroup", files(), 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cpuLimit(tc.fsys, tc.numCPU); got != tc.want {
				t.Errorf("cpuLimit = %v, want %v", got, tc.want)
			}
		})
	}
}

// On the machine itself the limits are positive and no more than what it has.
func TestLimitsOnThisMachine(t *testing.T) {
	root := os.DirFS("/")
	if got := cpuLimit(root, runtime.NumCPU()); got <= 0 || got > float64(runtime.NumCPU()) {
		t.Errorf("cpuLimit = %v, want in (0, %d]", got, runtime.NumCPU())
	}
	mem := memoryLimit(root, math.MaxInt64)
	if total := memTotal(root); total > 0 && (mem <= 0 || mem > float64(total)) {
		t.Errorf("memoryLimit = %v, want in (0, %d]", mem, total)
	}
}
