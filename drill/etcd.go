package drill

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// maxSocketPath is the longest unix socket path Linux accepts (sun_path
// is 108 bytes with its NUL).
const maxSocketPath = 107

// member is the embedded etcd the drill runs on the restored data dir.
type member struct {
	etcd     *embed.Etcd
	client   *clientv3.Client
	endpoint string
}

// memberConfig is what [startMember] needs.
type memberConfig struct {
	dir, dataDir string
	name         string
	peer         url.URL
	quota        int64
	logger       *zap.Logger
	timeout      time.Duration
}

// startMember starts etcd on cfg.dataDir, a data dir the restore built
// for the member cfg.name with peer URL cfg.peer, with clients on a unix
// socket in cfg.dir (or, if its path is too long, an ephemeral loopback
// port), and connects a client. It waits for the member to be ready, for
// ctx to end, or for cfg.timeout. The caller calls stop.
func startMember(ctx context.Context, cfg memberConfig) (*member, error) {
	ec := embed.NewConfig()
	ec.Name = cfg.name
	ec.Dir = cfg.dataDir
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(cfg.logger)
	ec.LogLevel = "error"
	ec.QuotaBackendBytes = cfg.quota
	curl := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	if sock := filepath.Join(cfg.dir, "client.sock"); len(sock) <= maxSocketPath {
		curl = url.URL{Scheme: "unix", Path: sock}
	}
	ec.ListenClientUrls = []url.URL{curl}
	ec.AdvertiseClientUrls = []url.URL{curl}
	ec.ListenPeerUrls = []url.URL{cfg.peer}
	ec.AdvertisePeerUrls = []url.URL{cfg.peer}
	ec.InitialCluster = ec.InitialClusterFromName(cfg.name)
	// no metrics or pprof listeners, no auto compaction: the member only
	// serves the drill
	ec.ListenMetricsUrls = nil

	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("start etcd on the restored data dir: %w", err)
	}
	m := &member{etcd: e}
	timer := time.NewTimer(cfg.timeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		m.stop()
		return nil, fmt.Errorf("etcd on the restored data dir failed before it was ready: %w", err)
	case <-timer.C:
		m.stop()
		return nil, fmt.Errorf("etcd on the restored data dir not ready after %s", cfg.timeout)
	case <-ctx.Done():
		m.stop()
		return nil, ctx.Err()
	}
	if len(e.Clients) == 0 {
		m.stop()
		return nil, errors.New("etcd started without a client listener")
	}
	if curl.Scheme == "unix" {
		m.endpoint = "unix://" + curl.Path
	} else {
		m.endpoint = "http://" + e.Clients[0].Addr().String()
	}
	m.client, err = clientv3.New(clientv3.Config{
		Endpoints:   []string{m.endpoint},
		DialTimeout: 10 * time.Second,
		Logger:      zap.NewNop(),
		Context:     ctx,
	})
	if err != nil {
		m.stop()
		return nil, fmt.Errorf("connect to the restored etcd: %w", err)
	}
	return m, nil
}

// stop closes the client and the member and waits for it to exit.
func (m *member) stop() {
	if m.client != nil {
		_ = m.client.Close()
	}
	m.etcd.Close()
	<-m.etcd.Server.StopNotify()
}

// freePeerURL returns an http URL on a loopback port that is free now:
// the restored member must advertise the peer URL it listens on, and a
// single member never dials it.
func freePeerURL() (url.URL, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return url.URL{}, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return url.URL{Scheme: "http", Host: l.Addr().String()}, nil
}
