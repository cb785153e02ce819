// Command floor is the benchmark floor for read queries: the least any
// query over an etcd snapshot must do. It walks the bbolt "key" bucket with
// a cursor and reads each record's user key (field 1 of the KeyValue), and
// prints how many records it saw.
package main

import (
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: floor SNAPSHOT")
		os.Exit(2)
	}
	db, err := bolt.Open(os.Args[1], 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer db.Close()
	n, keyBytes := 0, 0
	err = db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte("key")).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			n++
			if _, typ, l := protowire.ConsumeTag(v); l > 0 && typ == protowire.BytesType {
				key, _ := protowire.ConsumeBytes(v[l:])
				keyBytes += len(key)
			}
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%d records, %d key bytes\n", n, keyBytes)
}
