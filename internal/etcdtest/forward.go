package etcdtest

import (
	"io"
	"net"
	"sync"
)

// Forward listens on host:0 and copies every connection to target and
// back: the same server reached under another address (one its
// certificate may not name). It returns the address and the function that
// stops it and waits for its connections.
func Forward(host, target string) (addr string, stop func(), err error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", nil, err
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer func() { _ = c.Close() }()
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer func() { _ = u.Close() }()
				go func() { _, _ = io.Copy(u, c); _ = u.Close() }()
				_, _ = io.Copy(c, u)
			})
		}
	})
	return l.Addr().String(), func() { _ = l.Close(); wg.Wait() }, nil
}
