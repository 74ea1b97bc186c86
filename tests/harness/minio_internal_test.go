package harness

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// TestMinIOPortInUse pins the log text StartMinIO's retry depends on and
// checks that a failed start reports the server's log.
func TestMinIOPortInUse(t *testing.T) {
	t.Parallel()
	bin := Tool(t, "minio")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := t.TempDir()
	m := &MinIO{Dir: dir, DataDir: filepath.Join(dir, "data"), LogPath: filepath.Join(dir, "minio.log"),
		Port: l.Addr().(*net.TCPAddr).Port, ConsolePort: FreePort(t), AccessKey: "harnessuser",
		SecretKey: "harnesssecret", bin: bin}
	t.Cleanup(m.Stop)
	err = m.start()
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("start on a busy port: %v", err)
	}
}
