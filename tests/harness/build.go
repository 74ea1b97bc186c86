package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type buildResult struct {
	once sync.Once
	path string
	err  error
}

var (
	buildMu    sync.Mutex
	builds     = map[string]*buildResult{}
	buildDir   string
	buildDirEr error
	buildSeq   int
)

const buildDirPrefix = "pgarchive-harness-bin-"

// ModuleRoot returns the directory of the go.mod enclosing the working
// directory (go test runs each package in its own directory).
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// binDir is one directory per test process. A test binary has no exit hook
// without TestMain, so instead each process sweeps away the directories of
// processes that no longer exist.
func binDir() (string, error) {
	if buildDir != "" || buildDirEr != nil {
		return buildDir, buildDirEr
	}
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), buildDirPrefix+"*"))
	for _, d := range old {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), buildDirPrefix))
		if err == nil && pid != os.Getpid() && errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			os.RemoveAll(d)
		}
	}
	buildDir = filepath.Join(os.TempDir(), buildDirPrefix+strconv.Itoa(os.Getpid()))
	buildDirEr = os.MkdirAll(buildDir, 0o755)
	return buildDir, buildDirEr
}

// BuildBinary builds a main package once per test process with
// -ldflags "-X main.version=test" and returns the binary's path. pkg is an
// import path or a path relative to the module root ("./cmd/pgarchive").
// Concurrent callers for the same pkg share one build.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	goBin := Tool(t, "go")
	root := ModuleRoot(t)
	buildMu.Lock()
	dir, err := binDir()
	r := builds[pkg]
	if r == nil {
		r = &buildResult{}
		builds[pkg] = r
		buildSeq++
		r.path = filepath.Join(dir, fmt.Sprintf("%s-%d", path.Base(pkg), buildSeq))
	}
	buildMu.Unlock()
	if err != nil {
		t.Fatalf("BuildBinary: %v", err)
	}
	r.once.Do(func() {
		// Cold builds that pull in all rclone backends take ~2 min on 2 cores.
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		start := time.Now()
		_, _, r.err = runCmdIn(ctx, root, goBin, "build", "-o", r.path, "-ldflags", "-X main.version=test", pkg)
		if r.err == nil {
			t.Logf("built %s in %s", pkg, time.Since(start).Round(time.Millisecond))
		}
	})
	if r.err != nil {
		t.Fatalf("BuildBinary %s: %v", pkg, r.err)
	}
	return r.path
}
