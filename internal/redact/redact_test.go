package redact

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	x := &Redactor{}
	x.Add("s3cr3t-V4lue", "x", "", "s3cr3t-V4lue-longer")
	for in, want := range map[string]string{
		`Setting secret_access_key="s3cr3t-V4lue" for "m2" from environment variable RCLONE_CONFIG_M2_SECRET_ACCESS_KEY`: `Setting secret_access_key="***" for "m2" from environment variable RCLONE_CONFIG_M2_SECRET_ACCESS_KEY`,
		`Setting secret_access_key="never-registered" for "m2"`:                                                          `Setting secret_access_key="***" for "m2"`,
		`:s3,access_key_id=AKIA,secret_access_key=abcd1234:bucket`:                                                       `:s3,access_key_id=AKIA,secret_access_key=***:bucket`,
		`token=abc password='p w' pass=hunter22`:                                                                         `token=*** password='***' pass=***`,
		`the value s3cr3t-V4lue-longer leaked`:                                                                           `the value *** leaked`,
		`identity AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQ in a message`:                                                     `identity AGE-SECRET-KEY-*** in a message`,
		`archive db1_20261121T020000Z.sql.gz.age stored (x, 12 B)`:                                                       `archive db1_20261121T020000Z.sql.gz.age stored (x, 12 B)`,
		`keep-within=7d upstreams_failed=0 dump_sha256=ab12`:                                                             `keep-within=7d upstreams_failed=0 dump_sha256=ab12`,
	} {
		if got := x.String(in); got != want {
			t.Errorf("%s\n got %s\nwant %s", in, got, want)
		}
	}
	if !IsSecretKey("secret_access_key") || !IsSecretKey("PASS") || IsSecretKey("access_key_id") || IsSecretKey("endpoint") {
		t.Error("IsSecretKey")
	}
}

func FuzzString(f *testing.F) {
	f.Add("password=abc s3cr3t-V4lue")
	x := &Redactor{}
	x.Add("s3cr3t-V4lue")
	f.Fuzz(func(t *testing.T, s string) {
		if out := x.String(s); strings.Contains(out, "s3cr3t-V4lue") {
			t.Fatalf("secret survived: %q -> %q", s, out)
		}
	})
}
