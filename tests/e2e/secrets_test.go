package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
)

// TestSecretsNeverLogged runs pgarchive with --verbose (rclone's debug
// lines included) with S3 secrets given by rclone.conf, by RCLONE_CONFIG_*
// variables, right and wrong (rclone keeps the section's dash:
// RCLONE_CONFIG_MINIO-A_...), and in a connection-string remote of the
// settings file, on stderr and into a real journald: no secret may show.
func TestSecretsNeverLogged(t *testing.T) {
	w := newWorld(t, nil)
	a, b := w.minios[0], w.minios[1]
	idPath, recip := harness.AgeKeygen(t, false)
	passFile := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(passFile, []byte("correct horse battery staple\n"), 0o600)
	dump := filepath.Join(t.TempDir(), "db1.sql")
	os.WriteFile(dump, []byte("SELECT 1;\n-- PostgreSQL database dump complete\n"), 0o600)
	const wrong = "WrongSecret0123456789"

	settings := filepath.Join(t.TempDir(), "settings.json")
	os.WriteFile(settings, []byte(`{"remote": ":s3,provider=Minio,endpoint=`+b.Endpoint()+`,access_key_id=`+b.AccessKey+
		`,secret_access_key=`+b.SecretKey+`:`+b.Bucket+`", "passphrase-file": "`+passFile+`"}`), 0o644)

	type tc struct {
		name string
		env  []string
		args []string
	}
	cases := []tc{
		{"rclone.conf", nil, []string{"--rclone-config", w.conf, "--recipient", recip, "archive", "-d", "db1", "-f", dump}},
		{"environment", []string{"RCLONE_CONFIG_MINIO-A_SECRET_ACCESS_KEY=" + a.SecretKey},
			[]string{"--rclone-config", w.conf, "list"}},
		{"wrong secret in the environment", []string{"RCLONE_CONFIG_MINIO-B_SECRET_ACCESS_KEY=" + wrong},
			[]string{"--rclone-config", w.conf, "list"}},
		{"settings file", nil, []string{"--config", settings, "--rclone-config", w.conf, "archive", "-d", "db2", "-f", dump}},
		{"deep verify with an identity", nil, []string{"--rclone-config", w.conf, "verify", "-d", "db1", "--deep", "-i", idPath}},
	}
	secrets := []string{a.SecretKey, b.SecretKey, wrong, "correct horse battery staple", identityOf(t, idPath)}
	for _, c := range cases {
		cmd := exec.Command(w.bin, append([]string{"--verbose", "--log-target", "stderr"}, c.args...)...)
		cmd.Env = append(append(os.Environ(), "RCLONE_CONFIG="), c.env...)
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), "debug:") {
			t.Fatalf("%s: no debug output at all:\n%s", c.name, out)
		}
		for _, s := range secrets {
			if strings.Contains(string(out), s) {
				t.Errorf("%s: a secret (%.6s...) is in the output:\n%s", c.name, s, out)
			}
		}
		if c.env != nil && !strings.Contains(string(out), `secret_access_key="***"`) {
			t.Errorf("%s: rclone's line about the environment variable should show the key, masked:\n%s", c.name, out)
		}
	}

	// The same under a real journald: the entries, fields included.
	harness.Need(t, "journalctl")
	j := harness.StartJournald(t)
	env := []string{"RCLONE_CONFIG_MINIO-B_SECRET_ACCESS_KEY=" + wrong}
	j.RunAsService(t, env, "pgarchive-secrets", w.bin, "--verbose", "--rclone-config", w.conf, "list")
	entries := j.Entries(t, "SYSLOG_IDENTIFIER=pgarchive")
	if len(entries) == 0 {
		t.Fatal("no journal entries")
	}
	for _, e := range entries {
		for k, v := range e {
			for _, s := range secrets {
				if strings.Contains(v, s) {
					t.Errorf("journal field %s holds a secret: %s", k, v)
				}
			}
		}
	}
}

// identityOf is the AGE-SECRET-KEY line of an identity file.
func identityOf(t *testing.T, path string) string {
	for _, l := range strings.Split(string(mustRead(t, path)), "\n") {
		if strings.HasPrefix(l, "AGE-SECRET-KEY-") {
			return l
		}
	}
	t.Fatalf("no identity in %s", path)
	return ""
}
