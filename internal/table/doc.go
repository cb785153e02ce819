// Package table prints rows in aligned columns like kubectl, streaming:
// instead of buffering every row (as text/tabwriter does), [Print] asks
// for the rows twice, once for the column widths and once for the lines,
// both times on every core, over chunks of rows whose lines are written in
// order. Making a line allocates nothing, so a table of a million rows
// costs a million lines of output and a few buffers, not a million
// strings.
//
// Cells from files are for people: [Text] cleans them with
// [termtext.Clean], so no escape sequence of theirs reaches a terminal.
// Widths are in bytes, as kubectl's are for ASCII names.
package table
