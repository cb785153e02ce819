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

// Silent listens on 127.0.0.1:0, accepts every connection and never
// answers: a client waits there until its timeout. It returns the address
// and the function that closes the listener and every connection.
func Silent() (addr string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return l.Addr().String(), func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	}, nil
}
