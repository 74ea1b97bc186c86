package keys

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"io"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"
)

// decryptWith encrypts to k's recipients and decrypts with ids.
func decryptWith(t *testing.T, k *Keys, ids *Identities) {
	t.Helper()
	var buf bytes.Buffer
	w, _ := age.Encrypt(&buf, k.Recipients...)
	io.WriteString(w, "hello")
	w.Close()
	r, err := age.Decrypt(&buf, ids.List...)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(r); string(got) != "hello" {
		t.Fatalf("decrypted %q", got)
	}
}

func TestLoadIdentities(t *testing.T) {
	x, _ := age.GenerateX25519Identity()
	xPath := write(t, "x.txt", "# created: now\n"+x.String()+"\n")
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, _ := ssh.MarshalPrivateKey(priv, "")
	sshPath := write(t, "id_ed25519", string(pem.EncodeToMemory(block)))
	locked, _ := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("pw"))
	lockedPath := write(t, "id_locked", string(pem.EncodeToMemory(locked)))
	passPath := write(t, "pass", "correct horse\n")

	for _, src := range []Sources{{IdentityFile: xPath}, {IdentityFile: sshPath}, {PassphraseFile: passPath}} {
		k, err := Load(src)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := LoadIdentities(src.IdentityFile, src.PassphraseFile)
		if err != nil {
			t.Fatal(err)
		}
		decryptWith(t, k, ids)
		if strings.Contains(ids.Label, "correct horse") || strings.Contains(ids.Label, x.String()) {
			t.Fatalf("label leaks the secret: %s", ids.Label)
		}
	}
	for name, c := range map[string]struct{ id, pass, want string }{
		"both":   {xPath, passPath, "not both"},
		"none":   {"", "", "decrypting needs a key"},
		"locked": {lockedPath, "", "passphrase-protected SSH key"},
		"empty":  {"", write(t, "empty", "\nsecond\n"), "first line is empty"},
		"absent": {"/nonexistent/key", "", "/nonexistent/key"},
	} {
		if _, err := LoadIdentities(c.id, c.pass); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
}
