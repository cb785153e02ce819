package par_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/etcdsafe/etcdsafe/internal/par"
)

func ExampleOrdered() {
	p := par.NewOrdered(context.Background(), 4,
		func(s string) string { return strings.ToUpper(s) }, // on the workers
		func(s string) error { fmt.Println(s); return nil }, // on the caller's goroutine, in order
	)
	defer p.Stop()
	for _, s := range []string{"a", "b", "c", "d", "e"} {
		if err := p.Submit(s); err != nil {
			fmt.Println(err)
			return
		}
	}
	if err := p.Finish(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// A
	// B
	// C
	// D
	// E
}
