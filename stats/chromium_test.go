package stats

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/halo-lb/halo/internal/testnet"
)

const chromiumPath = "/usr/bin/chromium"

// browserErrors collects what the page's console and the browser's log
// report as errors.
type browserErrors struct {
	mu   sync.Mutex
	list []string
}

func (b *browserErrors) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			msg = "console." + string(ev.Type) + ": " + strings.Join(args, " ")
		}
	case *runtime.EventExceptionThrown:
		msg = "exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			msg += " " + ev.ExceptionDetails.Exception.Description
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError {
			msg = "log (" + string(ev.Entry.Source) + "): " + ev.Entry.Text + " " + ev.Entry.URL
		}
	}
	if msg != "" {
		b.mu.Lock()
		b.list = append(b.list, msg)
		b.mu.Unlock()
	}
}

func (b *browserErrors) take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.list
	b.list = nil
	return l
}

// startBrowser starts headless Chromium, with a fresh profile, for the
// test; every request it sends carries auth.
func startBrowser(t *testing.T, auth string) (context.Context, *browserErrors) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		testnet.SkipOrFail(t, "no Chromium at "+chromiumPath+" (scripts/install-deps installs it)")
	}
	var browser *exec.Cmd
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("force-color-profile", "srgb"),
		// A fresh profile: given no user-data-dir, the allocator makes
		// a temporary one for this browser, and at the end kills what
		// still uses it and removes it.
		chromedp.WindowSize(1500, 900),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			browser = cmd
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		}),
	)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if browser != nil && browser.Process != nil {
			browser.Process.Kill() // by its PID; a no-op once chromedp stopped it
		}
	})
	errs := &browserErrors{}
	// The first call starts the browser, with no timeout: a timeout on it
	// would end the browser.
	if err := chromedp.Listen(ctx, errs.listen); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Authorization": auth}}); err != nil {
		t.Fatalf("setting the Authorization header: %v", err)
	}
	return ctx, errs
}

// within runs steps with a timeout.
func within(t *testing.T, ctx context.Context, d time.Duration, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func evaluate[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// pageRow is a server's row as the browser shows it.
type pageRow struct {
	ID         string `json:"id"`
	Class      string `json:"class"`
	Status     string `json:"status"`
	Name       string `json:"name"`
	Background string `json:"background"`
	Checkbox   bool   `json:"checkbox"`
}

const rowsJS = `[...document.querySelectorAll('table.proxy tr[id^="row-"]')].map(tr => ({
	id: tr.id, class: tr.className, status: tr.dataset.status,
	name: tr.querySelector('td.name').textContent,
	background: getComputedStyle(tr.querySelector('td.name')).backgroundColor,
	checkbox: !!tr.querySelector('input[type=checkbox][name=s]'),
}))`

func rowsByID(t *testing.T, ctx context.Context) map[string]pageRow {
	t.Helper()
	m := map[string]pageRow{}
	for _, r := range evaluate[[]pageRow](t, ctx, rowsJS) {
		m[r.ID] = r
	}
	return m
}

var rgbRE = regexp.MustCompile(`^rgba?\((\d+), (\d+), (\d+)`)

// reddish reports whether a computed CSS colour is a red: red well above
// green and blue.
func reddish(css string) bool {
	m := rgbRE.FindStringSubmatch(css)
	if m == nil {
		return false
	}
	r, _ := strconv.Atoi(m[1])
	g, _ := strconv.Atoi(m[2])
	b, _ := strconv.Atoi(m[3])
	return r >= 200 && g <= 160 && b <= 160 && r-g >= 80 && r-b >= 80
}

func hasClass(classes, c string) bool {
	for _, x := range strings.Fields(classes) {
		if x == c {
			return true
		}
	}
	return false
}

// The page in a real browser, against a real halo: no console errors,
// every server shown with its state, a server whose process dies turns
// red, and an action from the page's form puts a server in maintenance.
func TestPageInChromium(t *testing.T) {
	h := startLiveHalo(t, 3)
	ctx, errs := startBrowser(t, "Basic "+base64.StdEncoding.EncodeToString([]byte(adminUser+":"+adminPass)))
	noErrors := func(when string) {
		t.Helper()
		// Console events may trail the load a little.
		time.Sleep(200 * time.Millisecond)
		for _, e := range errs.take() {
			t.Errorf("%s: the browser reported an error: %s", when, e)
		}
	}

	within(t, ctx, 10*time.Second, "loading the page", chromedp.Navigate(h.page+";norefresh"))
	if title := evaluate[string](t, ctx, "document.title"); !strings.HasPrefix(title, "Statistics Report for halo") {
		t.Fatalf("the page's title is %q", title)
	}
	noErrors("loading the page")

	stat := h.showStat(t)
	rows := rowsByID(t, ctx)
	for name := range h.backends {
		r, ok := rows["row-be-"+name]
		if !ok {
			t.Fatalf("the page has no row for be/%s (rows: %v)", name, rows)
		}
		want := stat.get(t, "be", name, "status")
		if r.Status != want || r.Name != name || !hasClass(r.Class, "up") || !r.Checkbox {
			t.Errorf("be/%s shows as %+v; show stat says %s", name, r, want)
		}
	}
	if r := rows["row-be-BACKEND"]; r.Status != stat.get(t, "be", "BACKEND", "status") || !hasClass(r.Class, "backend") {
		t.Errorf("be's BACKEND row shows as %+v", r)
	}
	if reddish(rows["row-be-s2"].Background) {
		t.Errorf("be/s2 is up but red: %s", rows["row-be-s2"].Background)
	}

	// s1's server process goes away; its checks fail; the page shows it
	// down, in red.
	h.backends["s1"].Close()
	var down pageRow
	deadline := time.Now().Add(10 * time.Second)
	for {
		within(t, ctx, 5*time.Second, "reloading the page", chromedp.Reload())
		down = rowsByID(t, ctx)["row-be-s1"]
		if hasClass(down.Class, "down") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("be/s1 was not shown down within 10s of its server's end: %+v", down)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if !reddish(down.Background) {
		t.Errorf("be/s1 is down but its background is %s, not red", down.Background)
	}
	if down.Status != "DOWN" {
		t.Errorf("be/s1's row says %q, want DOWN", down.Status)
	}
	noErrors("reloading the page")

	// An action through the page: tick s2, choose MAINT, apply.
	form := `form:has(#proxy-be) `
	within(t, ctx, 10*time.Second, "putting be/s2 in maintenance through the page",
		chromedp.Click(chromedp.CSS(`#row-be-s2 input[type=checkbox]`)),
		chromedp.SetValue(chromedp.CSS(form+`select[name=action]`), "maint"),
		chromedp.Click(chromedp.CSS(form+`input[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#action-status`)),
	)
	// The page was opened with ;norefresh, and the action keeps it.
	if loc := evaluate[string](t, ctx, "location.href"); !strings.HasSuffix(loc, "/stats;norefresh;st=DONE") {
		t.Errorf("after the action the browser is at %s, want …/stats;norefresh;st=DONE", loc)
	}
	if got := h.showStat(t).get(t, "be", "s2", "status"); got != "MAINT" {
		t.Fatalf("after the page's action, show stat says be/s2 is %q, want MAINT", got)
	}
	if got := h.showStat(t).get(t, "be", "s3", "status"); got != "UP" {
		t.Errorf("the action on s2 left be/s3 %q, want UP", got)
	}
	rows = rowsByID(t, ctx)
	if r := rows["row-be-s2"]; r.Status != "MAINT" || !hasClass(r.Class, "maint") {
		t.Errorf("after the action the page shows be/s2 as %+v", r)
	}
	noErrors("the action")

	// The picture of the page: for the test's artifacts, and for the docs
	// when asked (HALO_UPDATE_SCREENSHOT=1).
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("HALO_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "stats-page.png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the page: %s (%d bytes)", file, len(png))
	if os.Getenv("HALO_UPDATE_SCREENSHOT") == "1" {
		if err := os.WriteFile(filepath.Join("..", "docs", "stats-page.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("updated docs/stats-page.png")
	}
}

func TestReddish(t *testing.T) {
	for css, want := range map[string]bool{
		"rgb(255, 128, 128)": true,
		"rgb(220, 60, 60)":   true,
		"rgb(195, 240, 195)": false,
		"rgb(200, 166, 230)": false,
		"rgb(255, 233, 160)": false,
		"rgba(0, 0, 0, 0)":   false,
		"transparent":        false,
		"rgb(1)":             false,
	} {
		if got := reddish(css); got != want {
			t.Errorf("reddish(%q) = %v, want %v", css, got, want)
		}
	}
}
