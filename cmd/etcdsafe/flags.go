package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// choiceValue is a flag taking one of a fixed set of words, checked when
// the command line is parsed: a wrong one is a flag error, so a usage
// error (exit 2) before anything runs. -o of every command is one.
type choiceValue struct {
	p       *string
	name    string
	allowed []string
}

func (c *choiceValue) Set(s string) error {
	if !slices.Contains(c.allowed, s) {
		return fmt.Errorf("%s must be %s", c.name, orList(c.allowed))
	}
	*c.p = s
	return nil
}

func (c *choiceValue) String() string { return *c.p }
func (c *choiceValue) Type() string   { return "string" }

// addOutputFlag adds -o/--output with its formats, the first the default.
func addOutputFlag(fs *pflag.FlagSet, p *string, formats ...string) {
	*p = formats[0]
	fs.VarP(&choiceValue{p: p, name: "-o", allowed: formats}, "output", "o", orList(formats))
}

// orList writes "a, b or c".
func orList(words []string) string {
	if len(words) == 1 {
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}
