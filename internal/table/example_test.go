package table_test

import (
	"context"
	"os"

	"github.com/etcdsafe/etcdsafe/internal/table"
)

func ExamplePrint() {
	type obj struct {
		ns, name, group, version string
		rev                      int64
	}
	objs := []obj{{"payments", "api", "apps", "v1", 228}, {"", "payments", "", "v1", 4}, {"kube-system", "coredns", "apps", "v1", 17}}
	_, _ = table.Print(context.Background(), os.Stdout, len(objs), table.Options{
		Header: []string{"NAMESPACE", "NAME", "APIVERSION", "REVISION"},
		Row: func(i int, c []table.Cell) bool {
			o := objs[i]
			if o.ns == "kube-system" {
				return false
			}
			ns := o.ns
			if ns == "" {
				ns = "-"
			}
			c[0], c[1], c[2], c[3] = table.Text(ns), table.Text(o.name), table.Join(o.group, '/', o.version), table.Int(o.rev)
			return true
		},
	})
	// Output:
	// NAMESPACE  NAME      APIVERSION  REVISION
	// payments   api       apps/v1     228
	// -          payments  v1          4
}
