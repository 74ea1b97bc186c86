package sign

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// keygen makes an ed25519 key pair with the stock ssh-keygen.
func keygen(t *testing.T, dir, name string) (priv, pub string) {
	t.Helper()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ssh-keygen is missing (tests/run installs openssh-client)")
		}
		t.Skip("no ssh-keygen")
	}
	priv = filepath.Join(dir, name)
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", priv).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	b, err := os.ReadFile(priv + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return priv, strings.TrimSpace(string(b))
}

func TestSignMatchesSSHKeygen(t *testing.T) {
	dir := t.TempDir()
	priv, pub := keygen(t, dir, "host")
	s, err := LoadSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(pub, s.PublicKey()) {
		t.Fatalf("PublicKey %q is not the start of %q", s.PublicKey(), pub)
	}
	msg := []byte("{\"format\": 2}\n")
	sig, err := s.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	mf, sf := filepath.Join(dir, "m.json"), filepath.Join(dir, "m.json.sig")
	os.WriteFile(mf, msg, 0o600)
	os.WriteFile(sf, sig, 0o600)
	// Stock OpenSSH accepts pgarchive's signature...
	check := func(args ...string) error {
		cmd := exec.Command("ssh-keygen", args...)
		cmd.Stdin = bytes.NewReader(msg)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return &exec.ExitError{ProcessState: cmd.ProcessState, Stderr: out}
		}
		return nil
	}
	if err := check("-Y", "check-novalidate", "-n", Namespace, "-s", sf); err != nil {
		t.Fatalf("ssh-keygen -Y check-novalidate refused pgarchive's signature: %s", err.(*exec.ExitError).Stderr)
	}
	allowed := filepath.Join(dir, "allowed_signers")
	os.WriteFile(allowed, []byte("pg1 namespaces=\"pgarchive\" "+pub+"\n"), 0o600)
	if err := check("-Y", "verify", "-f", allowed, "-I", "pg1", "-n", Namespace, "-s", sf); err != nil {
		t.Fatalf("ssh-keygen -Y verify refused: %s", err.(*exec.ExitError).Stderr)
	}
	// ...and pgarchive accepts ssh-keygen's.
	cmd := exec.Command("ssh-keygen", "-Y", "sign", "-q", "-n", Namespace, "-f", priv, mf)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v: %s", err, out)
	}
	theirs, err := os.ReadFile(sf)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := ParseTrusted("test", []string{"# the host", pub})
	if err != nil {
		t.Fatal(err)
	}
	for name, sig := range map[string][]byte{"pgarchive's": sig, "ssh-keygen's": theirs} {
		fp, err := tr.Check(msg, sig)
		if err != nil || fp != s.Fingerprint() {
			t.Fatalf("%s signature: %q, %v", name, fp, err)
		}
	}
}

func TestCheckRefuses(t *testing.T) {
	dir := t.TempDir()
	priv, pub := keygen(t, dir, "host")
	otherPriv, _ := keygen(t, dir, "other")
	s, _ := LoadSigner(priv)
	other, _ := LoadSigner(otherPriv)
	tr, err := ParseTrusted("test", []string{pub})
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("manifest bytes\n")
	good, _ := s.Sign(msg)
	byOther, _ := other.Sign(msg)
	changed := append([]byte{}, msg...)
	changed[0] ^= 1
	for name, c := range map[string]struct {
		msg, sig []byte
		want     string
	}{
		"changed byte": {changed, good, "does not match"},
		"other key":    {msg, byOther, "not a trusted signer"},
		"empty":        {msg, nil, "not an SSH signature"},
		"garbage":      {msg, []byte("-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n"), "not an SSH signature"},
		"trailing":     {msg, append(append([]byte{}, good...), "x"...), "trailing"},
		"huge":         {msg, bytes.Repeat([]byte("A"), MaxSignatureSize+1), "larger"},
	} {
		if _, err := tr.Check(c.msg, c.sig); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q", name, err, c.want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadSigner(filepath.Join(dir, "nope")); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing file: %v", err)
	}
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("AGE-SECRET-KEY-1XYZ"), 0o600)
	if _, err := LoadSigner(junk); err == nil || strings.Contains(err.Error(), "AGE-SECRET") {
		t.Errorf("junk key: %v (must fail without echoing the file)", err)
	}
	if _, err := ParseTrusted("--trusted-signer", []string{"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ nope"}); err == nil {
		t.Error("an unparsable key line was accepted")
	}
	tr, err := LoadTrusted(nil, "")
	if tr != nil || err != nil {
		t.Errorf("nothing configured: %v, %v", tr, err)
	}
	comments := filepath.Join(dir, "signers")
	os.WriteFile(comments, []byte("# nobody yet\n"), 0o600)
	if _, err := LoadTrusted(nil, comments); err == nil {
		t.Error("a signers file with no key must not configure trust in nobody silently")
	}
}

func FuzzParseSignature(f *testing.F) {
	f.Add([]byte("-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQ==\n-----END SSH SIGNATURE-----\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSignature(b)
		if err == nil && (s.PublicKey == nil || s.Signature == nil) {
			t.Fatal("accepted a signature without key or signature")
		}
	})
}
