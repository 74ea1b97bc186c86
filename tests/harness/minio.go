package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DefaultBucket is the bucket StartMinIO creates.
const DefaultBucket = "pgarchive"

// MinIO is a real `minio server` on loopback with its own data directory.
type MinIO struct {
	Dir         string // data lives in Dir/data, the log in Dir/minio.log
	DataDir     string
	LogPath     string
	Port        int // S3 API
	ConsolePort int
	AccessKey   string
	SecretKey   string
	Bucket      string

	bin string
	s3  *s3Client

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// StartMinIO starts a server, waits until it is ready and creates Bucket;
// t.Cleanup stops it.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin := Tool(t, "minio")
	dir := t.TempDir()
	m := &MinIO{
		Dir:       dir,
		DataDir:   filepath.Join(dir, "data"),
		LogPath:   filepath.Join(dir, "minio.log"),
		AccessKey: "h" + randomHex(8),
		SecretKey: randomHex(16),
		Bucket:    DefaultBucket,
		bin:       bin,
	}
	t.Cleanup(m.Stop)
	// FreePort can race with other processes; MinIO then exits with
	// "Specified port is already in use", so retry with fresh ports.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		m.Port, m.ConsolePort = FreePort(t), FreePort(t)
		m.s3 = &s3Client{endpoint: m.Endpoint(), accessKey: m.AccessKey, secretKey: m.SecretKey,
			region: "us-east-1", http: &http.Client{Timeout: 2 * time.Minute}}
		if err = m.start(); err == nil || !strings.Contains(logTail(m.LogPath, 4000), "already in use") {
			break
		}
	}
	if err != nil {
		t.Fatalf("minio: %v", err)
	}
	// A freshly formatted server can answer "live" slightly before it accepts
	// bucket operations, so creating the bucket is itself polled.
	err = waitFor(30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return m.s3.createBucket(ctx, m.Bucket)
	}, m.died)
	if err != nil {
		t.Fatalf("minio: create bucket %s: %v\nlog tail:\n%s", m.Bucket, err, logTail(m.LogPath, 3000))
	}
	return m
}

func (m *MinIO) died() error {
	m.mu.Lock()
	ch := m.exited
	m.mu.Unlock()
	if ch == nil {
		return errors.New("minio is not running")
	}
	select {
	case <-ch:
		return fmt.Errorf("minio exited: %v", m.waitErr)
	default:
		return nil
	}
}

func (m *MinIO) start() error {
	m.mu.Lock()
	if m.cmd != nil {
		m.mu.Unlock()
		return errors.New("minio already running")
	}
	logf, err := os.OpenFile(m.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	cmd := exec.Command(m.bin, "server", m.DataDir,
		"--address", "127.0.0.1:"+strconv.Itoa(m.Port),
		"--console-address", "127.0.0.1:"+strconv.Itoa(m.ConsolePort), "--quiet")
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey,
		// MinIO switches to CI/CD behaviour (e.g. accepting a data dir on the
		// root disk) when CI is set; force it so runs with and without CI=true
		// behave alike. No update checks: there is no internet.
		"MINIO_UPDATE=off", "MINIO_CI_CD=1",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	err = cmd.Start()
	logf.Close()
	if err != nil {
		m.mu.Unlock()
		return fmt.Errorf("start minio: %w", err)
	}
	exited := make(chan struct{})
	m.cmd, m.exited = cmd, exited
	go func() { m.waitErr = cmd.Wait(); close(exited) }()
	m.mu.Unlock()

	client := &http.Client{Timeout: 2 * time.Second}
	live := func() error {
		resp, err := client.Get(m.Endpoint() + "/minio/health/live")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("health/live: HTTP %d", resp.StatusCode)
		}
		return nil
	}
	// "live" only says the process answers HTTP; S3 calls can still get 503
	// XMinioServerNotInitialized for a moment (seen after a restart in CI),
	// so an authenticated ListBuckets must succeed too.
	ready := func() error {
		if err := live(); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _, err := m.s3.do(ctx, http.MethodGet, "", "", nil, nil, nil)
		return err
	}
	if err := waitFor(60*time.Second, ready, m.died); err != nil {
		m.Kill()
		return fmt.Errorf("minio on port %d not ready: %v\nlog tail:\n%s", m.Port, err, logTail(m.LogPath, 3000))
	}
	return nil
}

// Start starts a stopped or killed server again on the same data directory,
// ports and credentials.
func (m *MinIO) Start(t testing.TB) {
	t.Helper()
	if err := m.start(); err != nil {
		t.Fatalf("minio restart: %v", err)
	}
}

func (m *MinIO) signal(sig syscall.Signal, grace time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = syscall.Kill(-m.cmd.Process.Pid, sig)
	select {
	case <-m.exited:
	case <-time.After(grace):
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-m.exited
	}
	m.cmd, m.exited = nil, nil
}

// Stop shuts the server down gracefully (SIGTERM; SIGKILL after 30 s).
func (m *MinIO) Stop() { m.signal(syscall.SIGTERM, 30*time.Second) }

// Kill SIGKILLs the server, e.g. to make an upload fail half-way.
func (m *MinIO) Kill() { m.signal(syscall.SIGKILL, 30*time.Second) }

// Endpoint is the S3 API URL.
func (m *MinIO) Endpoint() string { return "http://127.0.0.1:" + strconv.Itoa(m.Port) }

// RcloneSection returns an rclone.conf section for this server; extra
// options (e.g. "max_upload_parts": "3") are added or override defaults.
func (m *MinIO) RcloneSection(name string, extra map[string]string) string {
	opts := map[string]string{
		"type":              "s3",
		"provider":          "Minio",
		"endpoint":          m.Endpoint(),
		"access_key_id":     m.AccessKey,
		"secret_access_key": m.SecretKey,
		"region":            "us-east-1",
	}
	for k, v := range extra {
		opts[k] = v
	}
	return renderSection(name, []string{"type", "provider", "endpoint", "access_key_id", "secret_access_key", "region"}, opts)
}

func renderSection(name string, first []string, opts map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s]\n", name)
	seen := map[string]bool{}
	for _, k := range first {
		if v, ok := opts[k]; ok {
			fmt.Fprintf(&b, "%s = %s\n", k, v)
			seen[k] = true
		}
	}
	var rest []string
	for k := range opts {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		fmt.Fprintf(&b, "%s = %s\n", k, opts[k])
	}
	return b.String()
}

func (m *MinIO) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 2*time.Minute)
}

// Objects lists every object under prefix in Bucket, with sizes and ETags.
func (m *MinIO) Objects(t testing.TB, prefix string) []ObjectInfo {
	t.Helper()
	ctx, cancel := m.ctx()
	defer cancel()
	objs, err := m.s3.list(ctx, m.Bucket, prefix)
	if err != nil {
		t.Fatalf("minio list %q: %v", prefix, err)
	}
	return objs
}

// ListObjects returns the keys under prefix, sorted.
func (m *MinIO) ListObjects(t testing.TB, prefix string) []string {
	t.Helper()
	var keys []string
	for _, o := range m.Objects(t, prefix) {
		keys = append(keys, o.Key)
	}
	sort.Strings(keys)
	return keys
}

// ObjectPaths returns every key in the bucket, sorted.
func (m *MinIO) ObjectPaths(t testing.TB) []string {
	t.Helper()
	return m.ListObjects(t, "")
}

// ReadObject returns an object's content.
func (m *MinIO) ReadObject(t testing.TB, key string) []byte {
	t.Helper()
	ctx, cancel := m.ctx()
	defer cancel()
	data, err := m.s3.get(ctx, m.Bucket, key)
	if err != nil {
		t.Fatalf("minio read %q: %v", key, err)
	}
	return data
}

// HeadObject returns an object's headers (ETag, Content-Length, X-Amz-Meta-*),
// or nil if it does not exist.
func (m *MinIO) HeadObject(t testing.TB, key string) http.Header {
	t.Helper()
	ctx, cancel := m.ctx()
	defer cancel()
	h, err := m.s3.head(ctx, m.Bucket, key)
	if err != nil {
		t.Fatalf("minio head %q: %v", key, err)
	}
	return h
}

// PutObject stores data under key with a single plain PUT (no metadata).
func (m *MinIO) PutObject(t testing.TB, key string, data []byte) {
	t.Helper()
	ctx, cancel := m.ctx()
	defer cancel()
	if err := m.s3.put(ctx, m.Bucket, key, data); err != nil {
		t.Fatalf("minio put %q: %v", key, err)
	}
}

// DeleteObject removes key (no error if it is absent, as in S3).
func (m *MinIO) DeleteObject(t testing.TB, key string) {
	t.Helper()
	ctx, cancel := m.ctx()
	defer cancel()
	if err := m.s3.delete(ctx, m.Bucket, key); err != nil {
		t.Fatalf("minio delete %q: %v", key, err)
	}
}

// FlipByte corrupts one byte (XOR 0xFF) of a stored object at offset
// (negative counts from the end) by reading it and writing it back with a
// plain PUT. Size is unchanged but the object is rewritten: its ETag becomes
// the MD5 of the new content and any user metadata (e.g. rclone's mtime or
// md5chksum) is dropped, so hash checks that trust stored metadata see a
// mismatch only if they compare against something recorded elsewhere.
func (m *MinIO) FlipByte(t testing.TB, key string, offset int64) {
	t.Helper()
	data := m.ReadObject(t, key)
	if offset < 0 {
		offset += int64(len(data))
	}
	if offset < 0 || offset >= int64(len(data)) {
		t.Fatalf("FlipByte %q: offset %d outside object of %d bytes", key, offset, len(data))
	}
	data[offset] ^= 0xFF
	m.PutObject(t, key, data)
}

// IncompleteUploads lists the bucket's unfinished multipart uploads.
func (m *MinIO) IncompleteUploads(t testing.TB) []Upload {
	t.Helper()
	ctx, cancel := m.ctx()
	defer cancel()
	ups, err := m.s3.uploads(ctx, m.Bucket)
	if err != nil {
		t.Fatalf("minio list multipart uploads: %v", err)
	}
	return ups
}
