package harness

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Page is what headless Chromium (Debian's chromium) made of a page.
type Page struct {
	DOM string // the DOM after load, serialized (--dump-dom)
	// Console holds every message the page logged to its console, including
	// Content-Security-Policy violations and failed loads. Chromium prints
	// them as INFO:CONSOLE lines on stderr with --enable-logging=stderr.
	Console []string
}

var consoleLine = regexp.MustCompile(`:CONSOLE(?:\(\d+\))?[:\]]`)

// chromium runs headless Chromium on url with extra flags and returns its
// stdout and the console messages it logged.
func chromium(t testing.TB, url string, width, height int, extra ...string) (string, []string) {
	t.Helper()
	bin := Tool(t, "chromium")
	profile := t.TempDir()
	args := append([]string{
		"--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--hide-scrollbars",
		"--user-data-dir=" + profile, "--enable-logging=stderr", "--v=0",
		"--window-size=" + strconv.Itoa(width) + "," + strconv.Itoa(height),
	}, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	cmd.Env = append(os.Environ(), "HOME="+profile)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", url, err, tailString(stderr.String(), 3000))
	}
	var console []string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if consoleLine.MatchString(l) {
			console = append(console, l)
		}
	}
	return stdout.String(), console
}

// OpenPage loads url in headless Chromium at the given window size and
// returns its DOM and console messages.
func OpenPage(t testing.TB, url string, width, height int) Page {
	t.Helper()
	dom, console := chromium(t, url, width, height, "--dump-dom")
	return Page{DOM: dom, Console: console}
}

// Screenshot saves a PNG of url's first width x height pixels to out and
// returns the console messages of that load.
func Screenshot(t testing.TB, url, out string, width, height int) []string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	_, console := chromium(t, url, width, height, "--screenshot="+out)
	st, err := os.Stat(out)
	if err != nil || st.Size() < 1000 {
		t.Fatalf("chromium made no screenshot %s: %v", out, err)
	}
	return console
}

// PrintPDF prints url as Chromium's print dialog would (print media
// styles) into out, a PDF.
func PrintPDF(t testing.TB, url, out string) {
	t.Helper()
	chromium(t, url, 1280, 1024, "--no-pdf-header-footer", "--print-to-pdf="+out)
	b, err := os.ReadFile(out)
	if err != nil || !strings.HasPrefix(string(b), "%PDF-") {
		t.Fatalf("chromium printed no PDF to %s: %v", out, err)
	}
}
