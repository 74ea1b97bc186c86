package e2e

import (
	"os"
	"strings"
	"testing"
)

// TestRealCauseNamed: a stopped MinIO, a wrong secret and a bucket that
// does not exist are each named as such, with the upstream (list, status);
// a missing bucket is an error, not "no archives yet".
func TestRealCauseNamed(t *testing.T) {
	w := newWorld(t, nil)
	w.minios[1].Stop()
	for _, args := range [][]string{{"list"}, {"status", "-d", "db1"}} {
		r := w.pgarchive(t, nil, args...)
		if r.exit == 0 || !strings.Contains(r.stderr, "minio-b") || !strings.Contains(r.stderr, "connection refused") {
			t.Errorf("%v with minio-b stopped (exit %d):\n%s%s", args, r.exit, r.stdout, r.stderr)
		}
	}
	// An upstream rooted in a folder of the bucket: rclone probes that root
	// first and used to report "is a file" for any failure.
	conf := string(mustRead(t, w.conf))
	b := w.minios[1].Bucket
	os.WriteFile(w.conf, []byte(strings.Replace(conf, "minio-b:"+b, "minio-b:"+b+"/sub", 1)), 0o600)
	r := w.pgarchive(t, nil, "list")
	if r.exit == 0 || !strings.Contains(r.stderr, "minio-b:"+b+"/sub") || !strings.Contains(r.stderr, "connection refused") || strings.Contains(r.stderr, "is a file") {
		t.Errorf("list with minio-b:%s/sub stopped (exit %d):\n%s", b, r.exit, r.stderr)
	}
	os.WriteFile(w.conf, []byte(conf), 0o600)
	w.minios[1].Start(t)

	os.WriteFile(w.conf, []byte(strings.Replace(conf, "secret_access_key = "+w.minios[0].SecretKey, "secret_access_key = WrongSecret0123456789", 1)), 0o600)
	r = w.pgarchive(t, nil, "list")
	if r.exit == 0 || !strings.Contains(r.stderr, "minio-a") || !strings.Contains(r.stderr, "SignatureDoesNotMatch") {
		t.Errorf("list with a wrong secret for minio-a (exit %d):\n%s", r.exit, r.stderr)
	}
	if strings.Contains(r.stderr, "WrongSecret0123456789") {
		t.Errorf("the wrong secret is printed:\n%s", r.stderr)
	}

	os.WriteFile(w.conf, []byte(strings.Replace(conf, "minio-a:"+w.minios[0].Bucket, "minio-a:nosuchbucket", 1)), 0o600)
	r = w.pgarchive(t, nil, "list")
	if r.exit == 0 || !strings.Contains(r.stderr, `minio-a:nosuchbucket: bucket "nosuchbucket" does not exist`) {
		t.Errorf("list with a missing bucket must fail naming it (exit %d):\n%s%s", r.exit, r.stdout, r.stderr)
	}
}
