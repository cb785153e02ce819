package source_test

import (
	"context"
	"fmt"
	"os"

	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/source"
)

func Example() {
	ctx := context.Background()
	s, err := source.Open(ctx, "../testdata/generated/demo.db", source.Options{
		DecryptionConfigPath: "../testdata/generated/encryption-config.yaml",
		Prefix:               "/registry",
		OnUnchecked:          func(name, why string) { fmt.Fprintf(os.Stderr, "warning: %s %s\n", name, why) },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	out := s.Gate(ctx, os.Stdout) // nothing is printed before the verdict
	es, _, err := s.Snapshot.Index(ctx, inspect.Query{Exact: []byte("/registry/secrets/payments/stripe")})
	if err != nil {
		fmt.Println(s.Settle(ctx, err))
		return
	}
	for _, e := range es {
		obj, _, err := s.Render(e, source.RenderOptions{})
		if err != nil {
			fmt.Println(s.Settle(ctx, err))
			return
		}
		fmt.Fprintln(out, obj.GetKind(), obj.GetNamespace(), obj.GetName())
	}
	if err := s.Settle(ctx, nil); err != nil {
		fmt.Println(err)
	}
	// Output:
	// Secret payments stripe
}
