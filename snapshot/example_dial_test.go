package snapshot_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/etcdsafe/etcdsafe/snapshot"
)

// Connect names why a member cannot be reached; the caller picks its
// advice by the cause.
func ExampleConnect() {
	ctx := context.Background()
	c, _, err := snapshot.Connect(ctx, snapshot.ConnectOptions{
		Endpoint:    "unix:///nonexistent/etcd.sock",
		DialTimeout: 100 * time.Millisecond,
	})
	var de *snapshot.DialError
	if errors.As(err, &de) {
		fmt.Println(de.Cause == snapshot.CauseRefused)
		fmt.Println(de)
		return
	}
	_ = c.Close()
	// Output:
	// true
	// unix:///nonexistent/etcd.sock: connection refused: nothing listens there (dial unix /nonexistent/etcd.sock: connect: no such file or directory)
}
