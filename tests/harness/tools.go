package harness

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PostgresBinDir is where Debian's postgresql-15 puts the server binaries;
// they are not on PATH (only postgresql-common's wrappers are).
const PostgresBinDir = "/usr/lib/postgresql/15/bin"

const (
	minioInstall = "GOBIN=/root/go/bin go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c (~5.5 min cold)"
	ageInstall   = "GOBIN=/root/go/bin go install filippo.io/age/cmd/...@v1.3.2"
)

// installHints tells a CI maintainer how to get each external tool; the
// message ends up in the t.Fatalf under CI so a red run is self-explaining.
var installHints = map[string]string{
	"minio":                minioInstall,
	"age":                  ageInstall,
	"age-keygen":           ageInstall,
	"age-plugin-batchpass": ageInstall,
	"age-inspect":          ageInstall,
	"initdb":               "apt-get install -y postgresql-15",
	"postgres":             "apt-get install -y postgresql-15",
	"pg_dump":              "apt-get install -y postgresql-15",
	"pg_isready":           "apt-get install -y postgresql-15",
	"psql":                 "apt-get install -y postgresql-15",
	"gzip":                 "apt-get install -y gzip",
	"zstd":                 "apt-get install -y zstd",
	"ssh-keygen":           "apt-get install -y openssh-client",
	"systemd-journald":     "apt-get install -y systemd",
	"journalctl":           "apt-get install -y systemd",
	"systemd-cat":          "apt-get install -y systemd",
	"logger":               "apt-get install -y bsdutils",
	"unshare":              "apt-get install -y util-linux",
	"runuser":              "apt-get install -y util-linux",
	"mount":                "apt-get install -y mount",
	"go":                   "install the Go toolchain (go.mod: go 1.25.0)",
}

// searchDirs is PATH plus the places our tools live but PATH often lacks:
// GOBIN (minio, age), the versioned PostgreSQL bin dir and systemd's libexec.
func searchDirs() []string {
	dirs := filepath.SplitList(os.Getenv("PATH"))
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	if gopath := os.Getenv("GOPATH"); gopath != "" {
		for _, p := range filepath.SplitList(gopath) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	return append(dirs, "/root/go/bin", PostgresBinDir, "/lib/systemd", "/usr/lib/systemd",
		"/usr/local/go/bin", "/usr/sbin", "/sbin")
}

// LookTool returns the absolute path of an executable, or "" if none is found.
func LookTool(name string) string {
	if strings.ContainsRune(name, '/') {
		if isExecutable(name) {
			return name
		}
		return ""
	}
	for _, d := range searchDirs() {
		if d == "" {
			continue
		}
		p := filepath.Join(d, name)
		if isExecutable(p) {
			return p
		}
	}
	return ""
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// Need checks that every named tool exists. Under CI a missing tool is a
// failure (a green run must mean the test ran); elsewhere it is a loud skip.
func Need(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if LookTool(n) == "" {
			missing(t, fmt.Sprintf("%s not found in PATH, GOBIN, %s or /lib/systemd", n, PostgresBinDir),
				installHints[filepath.Base(n)])
		}
	}
}

// Tool is Need for one tool, returning its path.
func Tool(t testing.TB, name string) string {
	t.Helper()
	Need(t, name)
	return LookTool(name)
}

// NeedRoot applies the same policy to tests that need root (mount namespaces,
// dropping privileges for initdb).
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "needs root (mount namespace / privilege drop)", "run the tests as root, as CI does")
	}
}

func missing(t testing.TB, reason, hint string) {
	t.Helper()
	if hint == "" {
		hint = "see tests/harness/doc.go"
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("MISSING REQUIREMENT: %s; to fix: %s", reason, hint)
	}
	t.Skipf("SKIPPED: %s (to fix: %s; under CI=true this is a failure)", reason, hint)
}

var (
	portMu   sync.Mutex
	usedPort = map[int]bool{}
)

// FreePort returns a loopback TCP port that was free a moment ago and has not
// been handed out before in this process; the remaining race against other
// processes is why servers here retry on "address already in use".
func FreePort(t testing.TB) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("FreePort: %v", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !usedPort[p] {
			usedPort[p] = true
			return p
		}
	}
	t.Fatalf("FreePort: no unused port after 50 tries")
	return 0
}

// TempDir is t.TempDir, kept here so callers only import one helper package.
func TempDir(t testing.TB) string {
	t.Helper()
	return t.TempDir()
}

// sharedTempDir makes a short-named directory under os.TempDir() that an
// unprivileged account can reach: t.TempDir() is 0700 root and its long
// test-derived name can overflow the 107-byte unix socket path limit.
func sharedTempDir(t testing.TB, prefix string) string {
	t.Helper()
	d, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatalf("mkdir temp: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// account is the unprivileged user that servers run as when we are root.
type account struct {
	Name     string
	UID, GID int
}

// unprivileged picks `postgres` if it exists, else `nobody`; when not root we
// simply run as ourselves (drop=false).
func unprivileged(t testing.TB) (acct account, drop bool) {
	t.Helper()
	if os.Geteuid() != 0 {
		return account{Name: "", UID: os.Getuid(), GID: os.Getgid()}, false
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return account{Name: name, UID: uid, GID: gid}, true
	}
	t.Fatalf("running as root but neither user postgres nor nobody exists")
	return account{}, false
}

// childAttr makes a child die with the test binary (Pdeathsig) so a crashed or
// timed-out `go test` does not leave servers behind, and gives it its own
// process group so we can signal everything it spawned.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// runCmd runs a command to completion with a deadline and returns combined
// stdout and stderr in the error so failures explain themselves.
func runCmd(ctx context.Context, stdin []byte, env []string, name string, args ...string) (stdout, stderr []byte, err error) {
	return runCmdOpts(ctx, "", stdin, env, name, args...)
}

func runCmdIn(ctx context.Context, dir, name string, args ...string) (stdout, stderr []byte, err error) {
	return runCmdOpts(ctx, dir, nil, nil, name, args...)
}

func runCmdOpts(ctx context.Context, dir string, stdin []byte, env []string, name string, args ...string) (stdout, stderr []byte, err error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = childAttr()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s: %w\nstderr: %s", name, strings.Join(args, " "), err, tailString(e.String(), 2000))
	}
	return o.Bytes(), e.Bytes(), err
}

// mustRun is runCmd with a 2-minute bound that fails the test on error.
func mustRun(t testing.TB, stdin []byte, env []string, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, _, err := runCmd(ctx, stdin, env, name, args...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return out
}

// waitFor polls cond until it returns nil, the deadline passes, or abort
// reports that the thing we wait for has died (no point waiting further).
func waitFor(timeout time.Duration, cond func() error, abort func() error) error {
	deadline := time.Now().Add(timeout)
	delay := 10 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if abort != nil {
			if aerr := abort(); aerr != nil {
				return fmt.Errorf("%w (last check: %v)", aerr, err)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s: %w", timeout, err)
		}
		time.Sleep(delay)
		delay = min(delay*2, 200*time.Millisecond)
	}
}

// logTail returns the last n bytes of a log file, for failure messages.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log %s: %v)", path, err)
	}
	return tailString(string(b), n)
}

func tailString(s string, n int) string {
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return strings.TrimSpace(s)
}

// ArtifactDir is where a test leaves files for people to look at after the
// run (screenshots): $PGARCHIVE_TEST_ARTIFACTS/name, or tests/artifacts/name
// in the module (ignored by git). It is emptied first.
func ArtifactDir(t testing.TB, name string) string {
	t.Helper()
	root := os.Getenv("PGARCHIVE_TEST_ARTIFACTS")
	if root == "" {
		root = filepath.Join(ModuleRoot(t), "tests", "artifacts")
	}
	dir := filepath.Join(root, name)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
