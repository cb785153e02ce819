package main

import (
	"encoding/json"
	"io"
)

// printJSON writes v as indented JSON, the -o json form of every command.
func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
