package e2e

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// chromiumPath finds the browser: $ETCDSAFE_E2E_CHROMIUM (scripts/e2e.sh
// sets it), else chromium on $PATH. Missing, the test fails: it never
// skips.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ETCDSAFE_E2E_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: scripts/e2e.sh installs Debian's package (apt-get install chromium), or set ETCDSAFE_E2E_CHROMIUM")
	return ""
}

// duSnapshot starts an etcd, writes keys of three resources in three
// namespaces and one cluster-scoped resource, rewrites one key until it is
// the biggest by far, and saves a snapshot. It returns the snapshot's path,
// the number of keys and the big key.
func duSnapshot(t *testing.T) (string, int, string) {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Dir = t.TempDir()
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.UnsafeNoFsync = true
	u := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{u}, []url.URL{u}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{u}, []url.URL{u}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		t.Fatal("etcd not ready after 60s")
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + e.Clients[0].Addr().String()}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	put := func(k string, size int) {
		t.Helper()
		if _, err := cli.Put(ctx, k, strings.Repeat("v", size)); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for _, g := range []struct {
		prefix string
		keys   int
	}{{"/registry/configmaps/team-a/", 5}, {"/registry/configmaps/team-b/", 4}, {"/registry/secrets/team-a/", 3},
		{"/registry/deployments/team-c/", 2}, {"/registry/clusterroles/", 2}, {"/registry/events/team-a/", 2}} {
		for i := range g.keys {
			put(fmt.Sprintf("%sobj-%d", g.prefix, i), 500+300*i)
			n++
		}
	}
	const hot = "/registry/configmaps/team-b/leader"
	for range 120 {
		put(hot, 1500)
	}
	n++
	rc, err := cli.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	p := filepath.Join(t.TempDir(), "du.db")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, rc); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p, n, hot
}

// leafRect is what the page drew for one key.
type leafRect struct {
	Key   string  `json:"key"`
	W     float64 `json:"w"`
	H     float64 `json:"h"`
	Bytes float64 `json:"bytes"`
}

// TestDuHTMLInChromium: `etcdsafe du --html` of a snapshot the test wrote,
// opened in a real headless Chromium (Debian's package): the page renders
// without error and without loading anything, its treemap has one
// rectangle per key, the biggest is the key the test churned, the
// resource rectangles nest them; a screenshot is kept
// ($ETCDSAFE_E2E_ARTIFACTS/du-treemap.png, printed by scripts/e2e.sh).
func TestDuHTMLInChromium(t *testing.T) {
	_, es := bins(t)
	browser := chromiumPath(t)
	snap, keys, hot := duSnapshot(t)
	page := filepath.Join(t.TempDir(), "du.html")
	out := mustCLI(t, es, "du", snap, "--html", page, "--top", "5")
	if !strings.Contains(out, hot) {
		t.Errorf("du's text does not name the churned key:\n%s", out)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1400, 1000))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	var mu sync.Mutex
	var requests, consoleErrors []string
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			requests = append(requests, ev.Request.URL)
		case *runtime.EventExceptionThrown:
			consoleErrors = append(consoleErrors, fmt.Sprintf("%s (%d:%d)", ev.ExceptionDetails.Text,
				ev.ExceptionDetails.LineNumber, ev.ExceptionDetails.ColumnNumber))
		}
	}))
	defer cancel()
	// the first Run starts the browser: no timeout on it (it would stop
	// the browser), a watchdog instead
	watchdog := time.AfterFunc(3*time.Minute, cancel)
	defer watchdog.Stop()

	fileURL := (&url.URL{Scheme: "file", Path: page}).String()
	// (chromedp's WaitVisible never sees an SVG element as visible: the
	// tables' summary stands for the page, the attribute for the script)
	if err := chromedp.Do(ctx, chromedp.Navigate(fileURL), chromedp.WaitVisible("#summary"),
		chromedp.Poll[chromedp.Void](`document.body.hasAttribute("data-rendered") || document.body.hasAttribute("data-error")`,
			chromedp.WithPollingInterval(50*time.Millisecond)),
	); err != nil {
		t.Fatalf("chromium (%s): %v", browser, err)
	}
	eval := func(expr string, dst any) {
		t.Helper()
		var err error
		switch d := dst.(type) {
		case *string:
			*d, err = chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		case *int:
			*d, err = chromedp.Run(ctx, chromedp.Evaluate[int](expr))
		case *[]string:
			*d, err = chromedp.Run(ctx, chromedp.Evaluate[[]string](expr))
		case *[]leafRect:
			*d, err = chromedp.Run(ctx, chromedp.Evaluate[[]leafRect](expr))
		}
		if err != nil {
			t.Fatalf("evaluate %.60q: %v", expr, err)
		}
	}
	var rendered, failed string
	var leaves []leafRect
	var resources []string
	var resourceRects int
	eval(`document.body.getAttribute("data-rendered") || ""`, &rendered)
	eval(`document.body.getAttribute("data-error") || ""`, &failed)
	eval(`Array.from(document.querySelectorAll("#treemap rect.leaf")).map(r => {
			const b = r.getBBox();
			return {key: r.getAttribute("data-key") || "", w: b.width, h: b.height, bytes: Number(r.getAttribute("data-bytes"))};
		})`, &leaves)
	eval(`Array.from(document.querySelectorAll("#treemap text.resource")).map(t => t.textContent)`, &resources)
	eval(`document.querySelectorAll("#treemap rect.resource").length`, &resourceRects)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if failed != "" || len(consoleErrors) > 0 {
		t.Fatalf("the page's script failed: %q %v", failed, consoleErrors)
	}
	for _, r := range requests {
		if r != fileURL {
			t.Errorf("the page loaded %s: it must load nothing", r)
		}
	}
	if rendered != fmt.Sprint(keys) || len(leaves) != keys {
		t.Fatalf("treemap: %q rendered, %d rectangles, want one per key: %d", rendered, len(leaves), keys)
	}
	big := leaves[0]
	for _, l := range leaves {
		if l.W <= 0 || l.H <= 0 || l.Key == "" {
			t.Errorf("empty or unnamed rectangle: %+v", l)
		}
		if l.W*l.H > big.W*big.H {
			big = l
		}
	}
	if big.Key != hot {
		t.Errorf("biggest rectangle is %s (%.0f x %.0f), want the churned %s", big.Key, big.W, big.H, hot)
	}
	// areas follow bytes: the churned key's rectangle to the smallest
	// key's, within the padding the layout takes
	small := leaves[0]
	for _, l := range leaves {
		if l.Bytes < small.Bytes {
			small = l
		}
	}
	ratioArea, ratioBytes := big.W*big.H/(small.W*small.H), big.Bytes/small.Bytes
	if ratioArea < ratioBytes/2 || ratioArea > ratioBytes*2 {
		t.Errorf("areas do not follow bytes: %.1fx the area for %.1fx the bytes", ratioArea, ratioBytes)
	}
	if resourceRects != 5 || len(resources) == 0 || !strings.HasPrefix(resources[0], "configmaps ") {
		t.Errorf("%d resource rectangles, labels %q: want 5, configmaps (the biggest) first", resourceRects, resources)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil || img.Bounds().Dx() < 800 || img.Bounds().Dy() < 600 {
		t.Fatalf("screenshot: %v %v", err, img)
	}
	dir := os.Getenv("ETCDSAFE_E2E_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	artifact := filepath.Join(dir, "du-treemap.png")
	if err := os.WriteFile(artifact, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("du-html: %d rectangles, biggest %s (%.0f x %.0f), screenshot %s (%dx%d)", len(leaves), big.Key, big.W, big.H,
		artifact, img.Bounds().Dx(), img.Bounds().Dy())
}
