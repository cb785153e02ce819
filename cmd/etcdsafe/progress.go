package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/dustin/go-humanize"
	"golang.org/x/term"
)

// backupProgress redraws one status line on a terminal, at most twice a
// second, and drives the tests' hooks.
type backupProgress struct {
	w     io.Writer // nil: not a terminal
	start time.Time
	last  time.Time
	total int64
}

func newBackupProgress(stderr io.Writer) *backupProgress {
	p := &backupProgress{}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.w = f
	}
	return p
}

func (p *backupProgress) Start(total int64) {
	if testOnlyAfterSpool != nil {
		testOnlyAfterSpool()
	}
	p.start, p.total = time.Now(), total
}

func (p *backupProgress) Written(n int64) {
	if p.w != nil {
		if now := time.Now(); now.Sub(p.last) >= 500*time.Millisecond {
			p.last = now
			rate := float64(n) / now.Sub(p.start).Seconds()
			fmt.Fprintf(p.w, "\r\033[Kwritten %s (snapshot %s) %s/s", humanize.IBytes(uint64(n)), humanize.IBytes(uint64(p.total)), humanize.IBytes(uint64(rate)))
		}
	}
	if testOnlyAfterArchiveWrite != nil {
		testOnlyAfterArchiveWrite(n)
	}
}

func (p *backupProgress) Done(n int64) {
	if p.w != nil {
		fmt.Fprintf(p.w, "\r\033[Kwritten %s in %s\n", humanize.IBytes(uint64(n)), time.Since(p.start).Round(time.Millisecond))
	}
}
