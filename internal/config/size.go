package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeUnits are the units ParseSize reads: SI multiples of 1000 and IEC multiples of 1024.
var sizeUnits = []struct {
	name string
	mult int64
}{
	{"B", 1},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
}

// ParseSize reads a size in bytes: a whole number, optionally followed by a unit (B, KB, MB,
// GB, TB in powers of 1000; KiB, MiB, GiB, TiB in powers of 1024), with or without a space:
// "1048576", "500MB", "1 GiB". Units are read in any case ("1gib").
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q is not a size: write a whole number of bytes with an optional unit, e.g. 1GiB, 500MB, 1048576", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is too large a size", s)
	}
	unit := strings.TrimSpace(t[i:])
	if unit == "" {
		return n, nil
	}
	for _, u := range sizeUnits {
		if strings.EqualFold(unit, u.name) {
			if n > math.MaxInt64/u.mult {
				return 0, fmt.Errorf("%q is too large a size", s)
			}
			return n * u.mult, nil
		}
	}
	if strings.HasPrefix(unit, ".") || strings.HasPrefix(unit, ",") {
		return 0, fmt.Errorf("%q is not a size: use a whole number with a smaller unit (e.g. 1536MiB, not 1.5GiB)", s)
	}
	return 0, fmt.Errorf("%q has an unknown unit %q: use B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)", s, unit)
}

// FormatSize writes n in the largest IEC unit that divides it exactly: 1073741824 is
// "1GiB", 1500000 is "1500000" (so that ParseSize(FormatSize(n)) == n).
func FormatSize(n int64) string {
	for i := len(sizeUnits) - 1; i >= 0; i-- {
		u := sizeUnits[i]
		if !strings.HasSuffix(u.name, "iB") {
			continue
		}
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}
