package duhtml_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/duhtml"
)

// The page of a snapshot's usage, and the rectangles its treemap draws.
func ExampleWrite() {
	s, err := inspect.Open("../../testdata/real-k8s1.37-etcd3.7/snapshot.db", inspect.OpenOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	u, err := s.Usage(context.Background(), inspect.UsageOptions{Largest: 10})
	if err != nil {
		fmt.Println(err)
		return
	}
	var page bytes.Buffer
	if err := duhtml.Write(&page, u, duhtml.Options{Source: "snapshot.db", Top: 5}); err != nil {
		fmt.Println(err)
		return
	}
	leaves := duhtml.Tree(u).Leaves()
	fmt.Println(strings.HasPrefix(page.String(), "<!DOCTYPE html>"), len(leaves) > 10, leaves[0].Name)
	// Output: true true system:aggregate-to-edit
}
