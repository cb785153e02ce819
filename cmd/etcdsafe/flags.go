package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
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

// completeChoices makes the shell complete every choice flag of c (-o,
// --object-lock) with its words, as kubectl completes -o: the template
// formats as "jsonpath=" and "jsonpath-file=", with no space after.
func completeChoices(c *cobra.Command) {
	c.LocalFlags().VisitAll(func(f *pflag.Flag) {
		var words []string
		switch v := f.Value.(type) {
		case *choiceValue:
			words = v.allowed
		case *outputValue:
			for _, a := range v.allowed {
				if slices.Contains(templateFormats, a) {
					words = append(words, a+"=", a+"-file=")
					continue
				}
				words = append(words, a)
			}
		default:
			return
		}
		_ = c.RegisterFlagCompletionFunc(f.Name, func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			var out []string
			for _, w := range words {
				if strings.HasPrefix(w, toComplete) {
					out = append(out, w)
				}
			}
			d := cobra.ShellCompDirectiveNoFileComp
			if len(out) > 0 && !slices.ContainsFunc(out, func(w string) bool { return !strings.HasSuffix(w, "=") }) {
				d |= cobra.ShellCompDirectiveNoSpace // a template follows
			}
			return out, d
		})
	})
}
