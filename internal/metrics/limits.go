package metrics

import (
	"bufio"
	"bytes"
	"io/fs"
	"math"
	"path"
	"strconv"
	"strings"
)

// The memory and CPU limits are the denominators of the HighMemoryUsage and HighCPUUsage
// alerts. They are read at every scrape (a few small files) so that a container resized
// in place or a GOMEMLIMIT changed at run time shows up without a restart.
//
// Paths are relative to fsys, which is the root file system in production and a
// fstest.MapFS in tests.

// memoryLimit returns the memory the process may use, in bytes: GOMEMLIMIT when set
// (goLimit below math.MaxInt64), else the tightest cgroup limit (v2 memory.max along the
// process's cgroup path, else v1 memory.limit_in_bytes), capped by the machine's RAM,
// else the machine's RAM. 0 when nothing is known.
func memoryLimit(fsys fs.FS, goLimit int64) float64 {
	if goLimit > 0 && goLimit < math.MaxInt64 {
		return float64(goLimit)
	}
	total := memTotal(fsys)
	lim, ok := int64(math.MaxInt64), false
	for _, dir := range cgroupV2Dirs(fsys) {
		if v, found := readLimit(fsys, path.Join(dir, "memory.max")); found {
			lim, ok = min(lim, v), true
		}
	}
	if !ok {
		for _, dir := range cgroupV1Dirs(fsys, "memory") {
			// v1 reports "no limit" as a huge number (a multiple of the page size
			// near MaxInt64): the cap by total RAM below takes care of it.
			if v, found := readLimit(fsys, path.Join(dir, "memory.limit_in_bytes")); found {
				lim, ok = min(lim, v), true
			}
		}
	}
	switch {
	case ok && (total == 0 || lim < total):
		return float64(lim)
	default:
		return float64(total)
	}
}

// cpuLimit returns the CPU cores the process may use: the tightest cgroup quota (v2
// cpu.max, else v1 cpu.cfs_quota_us / cpu.cfs_period_us), capped by numCPU.
func cpuLimit(fsys fs.FS, numCPU int) float64 {
	cores := float64(numCPU)
	for _, dir := range cgroupV2Dirs(fsys) {
		b, err := fs.ReadFile(fsys, path.Join(dir, "cpu.max"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) != 2 || f[0] == "max" {
			continue
		}
		if c, ok := quota(f[0], f[1]); ok {
			cores = min(cores, c)
		}
	}
	for _, dir := range cgroupV1Dirs(fsys, "cpu") {
		q, errQ := fs.ReadFile(fsys, path.Join(dir, "cpu.cfs_quota_us"))
		p, errP := fs.ReadFile(fsys, path.Join(dir, "cpu.cfs_period_us"))
		if errQ != nil || errP != nil {
			continue
		}
		if c, ok := quota(strings.TrimSpace(string(q)), strings.TrimSpace(string(p))); ok {
			cores = min(cores, c)
		}
	}
	return cores
}

// quota divides a cgroup CPU quota by its period; a negative quota (v1's -1) is none.
func quota(q, p string) (float64, bool) {
	qv, err1 := strconv.ParseFloat(q, 64)
	pv, err2 := strconv.ParseFloat(p, 64)
	if err1 != nil || err2 != nil || qv <= 0 || pv <= 0 {
		return 0, false
	}
	return qv / pv, true
}

// readLimit reads a cgroup limit file: a number, or "max" for none.
func readLimit(fsys fs.FS, name string) (int64, bool) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || v <= 0 {
		return 0, false
	}
	return v, true
}

// memTotal returns MemTotal from /proc/meminfo in bytes, 0 when unknown.
func memTotal(fsys fs.FS) int64 {
	b, err := fs.ReadFile(fsys, "proc/meminfo")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0
		}
		return kb * 1024
	}
	return 0
}

const cgroupRoot = "sys/fs/cgroup"

// cgroupV2Dirs lists the process's cgroup v2 directory and its ancestors: a limit on
// any of them applies. Inside a container with its own cgroup namespace the path is "/"
// and only the mount root is left.
func cgroupV2Dirs(fsys fs.FS) []string {
	p := "/"
	if b, err := fs.ReadFile(fsys, "proc/self/cgroup"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "0::"); ok {
				p = path.Clean("/" + strings.TrimSpace(rest))
			}
		}
	}
	var dirs []string
	for ; p != "/" && p != "."; p = path.Dir(p) {
		dirs = append(dirs, cgroupRoot+p)
	}
	return append(dirs, cgroupRoot)
}

// cgroupV1Dirs lists where the v1 controller's files may be: under the process's
// cgroup path and at the mount root, for the mount names the controller is known by.
func cgroupV1Dirs(fsys fs.FS, controller string) []string {
	mounts := []string{controller}
	if controller == "cpu" {
		mounts = append(mounts, "cpu,cpuacct")
	}
	var sub string
	if b, err := fs.ReadFile(fsys, "proc/self/cgroup"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			// hierarchy-ID:controller-list:cgroup-path
			f := strings.SplitN(line, ":", 3)
			if len(f) != 3 {
				continue
			}
			for c := range strings.SplitSeq(f[1], ",") {
				if c == controller {
					sub = path.Clean("/" + strings.TrimSpace(f[2]))
				}
			}
		}
	}
	var dirs []string
	for _, m := range mounts {
		if sub != "" && sub != "/" {
			dirs = append(dirs, cgroupRoot+"/"+m+sub)
		}
		dirs = append(dirs, cgroupRoot+"/"+m)
	}
	return dirs
}
