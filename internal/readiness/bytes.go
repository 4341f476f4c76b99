package readiness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Byte units.
const (
	KiB Bytes = 1 << (10 * (iota + 1))
	MiB
	GiB
	TiB
)

// Bytes is a size in bytes. In a thresholds file it is a number of bytes or a string
// with a unit: "40GiB", "5 GiB", "100MiB", "1.5TB" (KB/MB/GB/TB are powers of 1000,
// KiB/MiB/GiB/TiB powers of 1024, B bytes).
type Bytes int64

// String formats the size with a binary unit, e.g. "1.5 GiB" or "512 B".
func (b Bytes) String() string {
	n := int64(b)
	neg := ""
	if n < 0 {
		neg, n = "-", -n
	}
	units := []struct {
		size Bytes
		name string
	}{{TiB, "TiB"}, {GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}}
	for _, u := range units {
		if n >= int64(u.size) {
			v := float64(n) / float64(u.size)
			return neg + strconv.FormatFloat(math.Floor(v*10)/10, 'f', -1, 64) + " " + u.name
		}
	}
	return neg + strconv.FormatInt(n, 10) + " B"
}

// UnmarshalJSON accepts a number of bytes or a size string.
func (b *Bytes) UnmarshalJSON(data []byte) error {
	s := string(bytes.TrimSpace(data))
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("size: %w", err)
		}
	}
	v, err := ParseBytes(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// UnmarshalYAML accepts a number of bytes or a size string.
func (b *Bytes) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: size must be a number or a string such as \"40GiB\"", n.Line)
	}
	v, err := ParseBytes(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = v
	return nil
}

var unitSizes = map[string]float64{
	"":    1,
	"B":   1,
	"KB":  1e3,
	"MB":  1e6,
	"GB":  1e9,
	"TB":  1e12,
	"KIB": 1 << 10,
	"MIB": 1 << 20,
	"GIB": 1 << 30,
	"TIB": 1 << 40,
}

// ParseBytes parses "42949672960", "40GiB", "40 GiB" or "1.5 TB" (units are case-insensitive).
func ParseBytes(s string) (Bytes, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.ToUpper(strings.TrimSpace(t[i:]))
	mult, ok := unitSizes[unit]
	if !ok || num == "" {
		return 0, fmt.Errorf("invalid size %q: want a number of bytes or e.g. \"40GiB\"", s)
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err == nil && n <= math.MaxInt64/int64(mult) {
			return Bytes(n * int64(mult)), nil
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f*mult >= math.MaxInt64 {
		return 0, fmt.Errorf("invalid size %q: not a number of bytes below 8 EiB", s)
	}
	return Bytes(math.Round(f * mult)), nil
}
