package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const mcInstall = "GOBIN=/root/go/bin go install github.com/minio/mc@v0.0.0-20250313080218-cf909e1063a9"

func init() { installHints["mc"] = mcInstall }

// MCBinary finds MinIO's client. "mc" is also Midnight Commander's name, so
// GOBIN comes before PATH and a candidate must call itself MinIO's.
func MCBinary(t testing.TB) string {
	t.Helper()
	var cands []string
	for _, d := range []string{os.Getenv("GOBIN"), filepath.Join(os.Getenv("GOPATH"), "bin"), "/root/go/bin"} {
		if d != "" && d != "bin" {
			cands = append(cands, filepath.Join(d, "mc"))
		}
	}
	cands = append(cands, LookTool("mc"))
	for _, c := range cands {
		if c == "" || !isExecutable(c) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, _, err := runCmd(ctx, nil, nil, c, "--version")
		cancel()
		if err == nil && strings.Contains(string(out), "MinIO") {
			return c
		}
	}
	missing(t, "MinIO's mc client not found in GOBIN, /root/go/bin or PATH", mcInstall)
	return ""
}

// MinIOUser is a non-root account on a MinIO server.
type MinIOUser struct {
	AccessKey, SecretKey string
}

// AddUser creates a user on m whose only rights are the IAM policy document
// policyJSON, with the stock mc CLI (mc admin policy create / user add /
// policy attach) and a throwaway MC_CONFIG_DIR.
func (m *MinIO) AddUser(t testing.TB, policyName, policyJSON string) MinIOUser {
	t.Helper()
	mc := MCBinary(t)
	dir := t.TempDir()
	env := []string{"MC_CONFIG_DIR=" + filepath.Join(dir, "mc")}
	policyFile := filepath.Join(dir, policyName+".json")
	if err := os.WriteFile(policyFile, []byte(policyJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	u := MinIOUser{AccessKey: policyName + "-" + randomHex(4), SecretKey: randomHex(16)}
	const alias = "pgtest"
	for _, args := range [][]string{
		{"alias", "set", alias, m.Endpoint(), m.AccessKey, m.SecretKey},
		{"admin", "policy", "create", alias, policyName, policyFile},
		{"admin", "user", "add", alias, u.AccessKey, u.SecretKey},
		{"admin", "policy", "attach", alias, policyName, "--user", u.AccessKey},
	} {
		mustRun(t, nil, env, mc, append([]string{"--quiet", "--no-color"}, args...)...)
	}
	return u
}

// RcloneSectionAs is RcloneSection with u's keys instead of root's.
func (m *MinIO) RcloneSectionAs(name string, u MinIOUser, extra map[string]string) string {
	opts := map[string]string{"access_key_id": u.AccessKey, "secret_access_key": u.SecretKey}
	for k, v := range extra {
		opts[k] = v
	}
	return m.RcloneSection(name, opts)
}

// AppendOnlyPolicy lets its user list, read and write (multipart uploads
// included) objects in bucket, but never delete one: what a database host
// that only uploads archives should hold.
func AppendOnlyPolicy(bucket string) string {
	return fmt.Sprintf(`{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
      "Resource": ["arn:aws:s3:::%[1]s"]
    },
    {
      "Effect": "Allow",
      "Action": ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
      "Resource": ["arn:aws:s3:::%[1]s/*"]
    }
  ]
}
`, bucket)
}
