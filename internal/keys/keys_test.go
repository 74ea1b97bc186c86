package keys

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"
)

func write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// roundTrip encrypts with the loaded keys and decrypts with id.
func roundTrip(t *testing.T, k *Keys, id age.Identity) {
	t.Helper()
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, k.Recipients...)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "hello")
	w.Close()
	r, err := age.Decrypt(&buf, id)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(r); string(got) != "hello" {
		t.Fatalf("decrypted %q", got)
	}
}

func TestRecipientKinds(t *testing.T) {
	x, _ := age.GenerateX25519Identity()
	pq, _ := age.GenerateHybridIdentity()
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, _ := ssh.NewPublicKey(edPriv.Public())
	sshLine := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))

	k, err := Load(Sources{Recipients: []string{x.Recipient().String()}})
	if err != nil || k.Described[0].Kind != "x25519" || !strings.HasPrefix(k.Described[0].Fingerprint, "sha256:") {
		t.Fatalf("x25519: %v %+v", err, k)
	}
	roundTrip(t, k, x)

	k, err = Load(Sources{Recipients: []string{pq.Recipient().String()}})
	if err != nil || k.Described[0].Kind != "mlkem768x25519" {
		t.Fatalf("pq: %v", err)
	}
	roundTrip(t, k, pq)

	k, err = Load(Sources{RecipientsFile: write(t, "r.txt", "# team\n\n"+sshLine+"\n")})
	if err != nil || k.Described[0].Kind != "ssh-ed25519" || k.Described[0].Fingerprint != ssh.FingerprintSHA256(sshPub) {
		t.Fatalf("ssh: %v %+v", err, k)
	}
	sshID, _ := agessh.NewEd25519Identity(edPriv)
	roundTrip(t, k, sshID)
}

func TestIdentityFiles(t *testing.T) {
	x, _ := age.GenerateX25519Identity()
	k, err := Load(Sources{IdentityFile: write(t, "id.txt", "# created: now\n"+x.String()+"\n")})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, k, x)

	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	block, _ := ssh.MarshalPrivateKey(edPriv, "")
	k, err = Load(Sources{IdentityFile: write(t, "id_ed25519", string(pem.EncodeToMemory(block)))})
	if err != nil {
		t.Fatal(err)
	}
	sshID, _ := agessh.NewEd25519Identity(edPriv)
	roundTrip(t, k, sshID)

	// A passphrase-protected SSH key still yields its public half.
	block, _ = ssh.MarshalPrivateKeyWithPassphrase(edPriv, "", []byte("secret"))
	if _, err := Load(Sources{IdentityFile: write(t, "id_enc", string(pem.EncodeToMemory(block)))}); err != nil {
		t.Fatalf("encrypted ssh identity: %v", err)
	}
}

func TestPassphrase(t *testing.T) {
	k, err := Load(Sources{PassphraseFile: write(t, "pass", "correct horse\nignored\n")})
	if err != nil || k.Described[0].Kind != "scrypt" || k.Described[0].Fingerprint != "" {
		t.Fatalf("%v %+v", err, k)
	}
	id, _ := age.NewScryptIdentity("correct horse")
	roundTrip(t, k, id)
}

func TestErrorsNameTheFileAndHideSecrets(t *testing.T) {
	x, _ := age.GenerateX25519Identity()
	secret := x.String()
	cases := map[string]Sources{
		"no key":           {},
		"missing file":     {IdentityFile: "/nonexistent/identity"},
		"garbage identity": {IdentityFile: write(t, "bad-id", "not a key\n")},
		"secret as recip":  {RecipientsFile: write(t, "wrong-recipients", secret+"\n")},
		"empty recipients": {RecipientsFile: write(t, "empty-recipients", "# nothing\n")},
		"empty passphrase": {PassphraseFile: write(t, "empty-pass", "\nsecond line\n")},
		"bad recipient":    {Recipients: []string{"age1notreally"}},
		"mixed pq":         {Recipients: []string{x.Recipient().String(), mustPQ().Recipient().String()}},
		"encrypted id":     {IdentityFile: write(t, "enc-id", "age-encryption.org/v1\n-> X25519 abc\n")},
		"pass and recip":   {Recipients: []string{x.Recipient().String()}, PassphraseFile: "/p"},
	}
	for name, s := range cases {
		_, err := Load(s)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, secret) || strings.Contains(msg, "correct horse") {
			t.Errorf("%s: error leaks a secret: %s", name, msg)
		}
		for _, p := range []string{s.IdentityFile, s.RecipientsFile, s.PassphraseFile} {
			if p != "" && p != "/p" && !strings.Contains(msg, p) {
				t.Errorf("%s: error %q does not name %s", name, msg, p)
			}
		}
	}
}

func mustPQ() *age.HybridIdentity {
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		panic(err)
	}
	return id
}
