package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/etcdsafe/etcdsafe/internal/buildinfo"
)

// newManCmd is the hidden command `make man` and the release build run:
// one man page per command (etcdsafe.1, etcdsafe-backup.1, ...) from the
// commands' help, by cobra's doc generator. The pages are dated from
// SOURCE_DATE_EPOCH, else the commit's time, so that two builds of one
// commit write the same bytes.
func newManCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "man DIR",
		Short:  "Write the man pages into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			date, err := manDate()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true
			manExitStatus(root)
			h := &doc.GenManHeader{Title: "ETCDSAFE", Section: "1", Date: &date,
				Source: "etcdsafe " + version, Manual: "etcdsafe manual"}
			if err := doc.GenManTree(root, h, args[0]); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			return nil
		},
	}
}

// manDate is the pages' date: SOURCE_DATE_EPOCH, else the commit's time,
// else now; in UTC.
func manDate() (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, usagef("SOURCE_DATE_EPOCH %q is not a number of seconds", s)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	if in := buildinfo.Read(buildinfo.Linked{CommitTime: commitTime}); !in.CommitTime.IsZero() {
		return in.CommitTime, nil
	}
	return time.Now().UTC(), nil
}

// manExitStatus rewrites the EXIT STATUS block at the end of each
// command's help (aligned text for a terminal) as the markdown the man
// renderer reads: a section of its own, one list item per code, a
// meaning that --help wraps joined into one line.
func manExitStatus(c *cobra.Command) {
	if head, block, ok := strings.Cut(c.Long, "\n\nEXIT STATUS\n"); ok {
		var b strings.Builder
		b.WriteString(head)
		b.WriteString("\n\n# EXIT STATUS\n")
		for _, line := range strings.Split(block, "\n") {
			code, text, isCode := strings.Cut(strings.TrimPrefix(line, "  "), " ")
			if _, err := strconv.Atoi(code); err == nil && isCode && strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   ") {
				fmt.Fprintf(&b, "\n- **%s** %s", code, strings.TrimSpace(text))
				continue
			}
			b.WriteString(" " + strings.TrimSpace(line)) // a wrapped meaning
		}
		c.Long = b.String() + "\n"
	}
	for _, sub := range c.Commands() {
		manExitStatus(sub)
	}
}
