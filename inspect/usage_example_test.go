package inspect_test

import (
	"context"
	"fmt"

	"github.com/etcdsafe/etcdsafe/inspect"
)

// What fills a snapshot: totals, what compaction would free, the top
// churning key.
func ExampleSnapshot_Usage() {
	s, err := inspect.Open("../testdata/real-k8s1.37-etcd3.7/snapshot.db", inspect.OpenOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	u, err := s.Usage(context.Background(), inspect.UsageOptions{Top: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d keys in %d records, %d bytes, %d of them history\n", u.Total.Keys, u.Total.Revisions, u.Total.Bytes, u.Total.HistoryBytes)
	fmt.Printf("compaction frees %d bytes in %d records\n", u.Compaction.FreeBytes, u.Compaction.FreeRecords)
	fmt.Printf("biggest resource: %s\n", u.Resources[0].Resource)
	fmt.Printf("top churning key: %s (%d revisions)\n", u.Churning[0].Key, u.Churning[0].Revisions)
	fmt.Printf("quota: %.3f%% of %d bytes (%s)\n", u.Quota.UsedPercent, u.Quota.Bytes, u.Quota.Source)
	// Output:
	// 212 keys in 230 records, 194522 bytes, 17735 of them history
	// compaction frees 17676 bytes in 18 records
	// biggest resource: clusterroles.rbac.authorization.k8s.io
	// top churning key: /registry/apiextensions.k8s.io/customresourcedefinitions/certificates.cert-manager.io (3 revisions)
	// quota: 0.014% of 2147483648 bytes (default)
}
