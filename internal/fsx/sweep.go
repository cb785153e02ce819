package fsx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// TempBase returns the final base name a temp file of [Create] is for
// (".<base>.tmp-<digits>" gives base), or false for any other name.
func TempBase(name string) (string, bool) {
	i := strings.LastIndex(name, ".tmp-")
	if !strings.HasPrefix(name, ".") || i < 2 {
		return "", false
	}
	digits := name[i+len(".tmp-"):]
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return "", false
	}
	return name[1:i], true
}

// SweepTemps removes from dir the temp files of [Create] whose final base
// name satisfies match: what runs killed between Create and Commit left
// behind (a killed process runs no Abort). Call it only while holding
// dir's [Lock], so that no live writer's temp file can be taken. Only
// regular files are removed; it returns their paths, and a file that
// cannot be removed is reported in err while the sweep goes on.
func SweepTemps(dir string, match func(base string) bool) (removed []string, err error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("sweep %q: %w", dir, err)
	}
	var errs []error
	for _, de := range des {
		base, ok := TempBase(de.Name())
		if !ok || !de.Type().IsRegular() || !match(base) {
			continue
		}
		p := filepath.Join(dir, de.Name())
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove stale temp file %q: %w", p, err))
			continue
		}
		removed = append(removed, p)
	}
	return removed, errors.Join(errs...)
}
