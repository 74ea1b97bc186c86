package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseGood(t *testing.T) {
	c, err := Parse(strings.NewReader(`{
	  "rclone-config": "${CREDENTIALS_DIRECTORY}/rclone.conf",
	  "remote": "archive-target-database:",
	  "prefix": "hosts/pg1",
	  "recipients": ["age1abc", "ssh-ed25519 AAAA"],
	  "dump-dir": "/var/backup/postgresql",
	  "dump-compression": "zstd",
	  "log-target": "auto"
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Remote != "archive-target-database:" || len(c.Recipients) != 2 || c.DumpCompression != "zstd" {
		t.Errorf("parsed %+v", c)
	}
}

func TestParseRejects(t *testing.T) {
	for name, in := range map[string]string{
		"typo":           `{"remtoe": "x:"}`,
		"not object":     `[]`,
		"trailing":       `{} {}`,
		"compression":    `{"dump-compression": "brotli"}`,
		"prefix":         `{"prefix": "../x"}`,
		"log target":     `{"log-target": "syslog"}`,
		"secret key":     `{"recipients": ["AGE-SECRET-KEY-1XYZ"]}`,
		"empty recip":    `{"recipients": [" "]}`,
		"two kinds":      `{"recipients": ["age1x"], "passphrase-file": "/run/p"}`,
		"identity+pass":  `{"identity-file": "/run/i", "passphrase-file": "/run/p"}`,
		"control remote": `{"remote": "a:\nb"}`,
	} {
		if _, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("%s: accepted %s", name, in)
		}
	}
}

func TestLoadNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pgarchive.json")
	os.WriteFile(p, []byte(`{"bogus": 1}`), 0o600)
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("error %v should name the file and the key", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestKeySources(t *testing.T) {
	if err := ValidateKeySources(nil, "", "", "", true); err == nil || !strings.Contains(err.Error(), "plaintext") {
		t.Errorf("no key: %v", err)
	}
	if err := ValidateKeySources([]string{"age1x"}, "/r", "/i", "", true); err != nil {
		t.Errorf("public sources should combine: %v", err)
	}
	if err := ValidateKeySources(nil, "", "", "/p", true); err != nil {
		t.Errorf("passphrase alone: %v", err)
	}
}

func TestExpandCredentials(t *testing.T) {
	env := func(k string) string {
		if k == "CREDENTIALS_DIRECTORY" {
			return "/run/credentials/x.service/"
		}
		return ""
	}
	for in, want := range map[string]string{
		"$CREDENTIALS_DIRECTORY/id":   "/run/credentials/x.service/id",
		"${CREDENTIALS_DIRECTORY}/id": "/run/credentials/x.service/id",
		"/etc/id":                     "/etc/id",
	} {
		if got, err := ExpandCredentials(in, env); err != nil || got != want {
			t.Errorf("ExpandCredentials(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ExpandCredentials("$CREDENTIALS_DIRECTORY/id", func(string) string { return "" }); err == nil {
		t.Error("unset CREDENTIALS_DIRECTORY accepted")
	}
}

// FuzzParse: whatever Parse accepts also passes Validate, and never panics.
func FuzzParse(f *testing.F) {
	f.Add(`{"remote":"a:","recipients":["age1x"],"dump-compression":"gzip"}`)
	f.Add(`{"passphrase-file":"/p"}`)
	f.Add(`{"drill":{"database":["db1"],"max-age":"26h"},"status":{"max-age":"0"},"prune":{"keep-daily":7,"keep-within":"1y6m"}}`)
	f.Fuzz(func(t *testing.T, in string) {
		c, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted config fails Validate: %v", err)
		}
	})
}

func TestTrustedSignersChecked(t *testing.T) {
	good := `{"trusted-signers": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPzwqLCBOKwYqZDj2BXCl8ooh7X6KxfFgPtR3BL1XCfq root@db1"], "max-clock-skew": "5m"}`
	if _, err := Parse(strings.NewReader(good)); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		`{"trusted-signers": ["ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ x"]}`: "trusted-signers, line 1",
		`{"trusted-signers": ["-----BEGIN OPENSSH PRIVATE KEY-----"]}`:      "private key",
		`{"max-clock-skew": "-1m"}`:                                         "negative",
		`{"max-clock-skew": "soon"}`:                                        "max-clock-skew",
	} {
		if _, err := Parse(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}

// The scheduled commands' sections are checked with the commands' parsers,
// every problem named with its section.
func TestCommandSections(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"drill": {"max-age": "26h", "database": ["db1"], "checks-file": "/nix/store/x-checks.json"}}`, ""},
		{`{"status": {"max-age": "0", "database": ["a", "b"]}}`, ""},
		{`{"prune": {"keep-daily": 7, "keep-within": "1y6m", "rclone-config": "$CREDENTIALS_DIRECTORY/rclone.conf"}}`, ""},
		{`{"prune": {"keep-last": -1}}`, ""},
		{`{"drill": {"max-age": "2d"}}`, `drill: max-age "2d"`},
		{`{"status": {"max-age": "-1h"}}`, "status: max-age \"-1h\" must not be negative"},
		{`{"status": {"database": ["a b"]}}`, "status: database name"},
		{`{"prune": {"keep-within": "6m"}}`, `prune: keep-within: duration "6m": "m" is ambiguous`},
		{`{"prune": {"keep-daily": -2}}`, "prune: retention: keep-daily -2"},
		{`{"prune": {}}`, "prune: no keep rule"},
		{`{"prune": {"keep-daily": 1, "keep-everything": 1}}`, "unknown field"},
	} {
		_, err := Parse(strings.NewReader(c.in))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.in, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want one with %q", c.in, err, c.want)
		}
	}
}
