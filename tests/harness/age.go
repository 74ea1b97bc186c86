package harness

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// AgeKeygen makes an identity file with the stock age-keygen (-pq for the
// post-quantum ML-KEM-768+X25519 hybrid) and returns its path and recipient.
func AgeKeygen(t testing.TB, pq bool) (identityPath, recipient string) {
	t.Helper()
	bin := Tool(t, "age-keygen")
	identityPath = filepath.Join(t.TempDir(), "identity.txt")
	args := []string{"-o", identityPath}
	if pq {
		args = append([]string{"-pq"}, args...)
	}
	mustRun(t, nil, nil, bin, args...)
	recipient = strings.TrimSpace(string(mustRun(t, nil, nil, bin, "-y", identityPath)))
	if !strings.HasPrefix(recipient, "age1") {
		t.Fatalf("age-keygen -y: unexpected recipient %q", recipient)
	}
	return identityPath, recipient
}

// SSHKeygen makes an unencrypted SSH key pair ("ed25519" or "rsa") and
// returns the private key path and the public key line (usable as an age
// recipient).
func SSHKeygen(t testing.TB, kind string) (privatePath, publicKey string) {
	t.Helper()
	bin := Tool(t, "ssh-keygen")
	args := []string{"-q", "-t", kind, "-N", "", "-C", "pgarchive-harness"}
	switch kind {
	case "ed25519":
	case "rsa":
		args = append(args, "-b", "3072")
	default:
		t.Fatalf("SSHKeygen: kind %q is not ed25519 or rsa", kind)
	}
	privatePath = filepath.Join(t.TempDir(), "id_"+kind)
	mustRun(t, nil, nil, bin, append(args, "-f", privatePath)...)
	pub, err := os.ReadFile(privatePath + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return privatePath, strings.TrimSpace(string(pub))
}

// AgeEncrypt runs the stock `age -e args...` (e.g. "-r", recipient or "-R",
// file) on plaintext and returns the ciphertext.
func AgeEncrypt(t testing.TB, plaintext []byte, args ...string) []byte {
	t.Helper()
	return mustRun(t, plaintext, nil, Tool(t, "age"), append([]string{"-e"}, args...)...)
}

// AgeDecrypt runs the stock `age -d args...` (e.g. "-i", identityPath) and
// fails the test if decryption fails.
func AgeDecrypt(t testing.TB, ciphertext []byte, args ...string) []byte {
	t.Helper()
	out, err := AgeTryDecrypt(t, ciphertext, args...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return out
}

// AgeTryDecrypt is AgeDecrypt for negative tests: the error (with age's
// stderr) is returned instead of failing.
func AgeTryDecrypt(t testing.TB, ciphertext []byte, args ...string) ([]byte, error) {
	t.Helper()
	return ageRun(t, ciphertext, nil, append([]string{"-d"}, args...)...)
}

func ageRun(t testing.TB, stdin []byte, env []string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, _, err := runCmd(ctx, stdin, env, Tool(t, "age"), args...)
	return out, err
}

// Passphrases: age v1.3.2 reads a passphrase only from the terminal
// (term.ReadSecret in cmd/age; there is no env var or flag), so `age -p` and
// `age -d` of an scrypt file cannot run unattended. The supported unattended
// way is the separate plugin cmd/age-plugin-batchpass from the same module:
// `age -e -j batchpass` / `age -d -j batchpass` with the passphrase in
// AGE_PASSPHRASE (or AGE_PASSPHRASE_FD), AGE_PASSPHRASE_WORK_FACTOR (1..30,
// default 18) on encryption and AGE_PASSPHRASE_MAX_WORK_FACTOR (default 22)
// on decryption. The files are ordinary scrypt recipients' files, readable by
// `age -d` at a terminal. age finds the plugin as age-plugin-batchpass on
// PATH, so the plugin's directory is put first on PATH here.

func batchpassEnv(t testing.TB, passphrase string, workFactor int) []string {
	t.Helper()
	plugin := Tool(t, "age-plugin-batchpass")
	env := []string{"PATH=" + filepath.Dir(plugin) + string(os.PathListSeparator) + os.Getenv("PATH"),
		"AGE_PASSPHRASE=" + passphrase, "AGE_PASSPHRASE_FD="}
	if workFactor > 0 {
		env = append(env, "AGE_PASSPHRASE_WORK_FACTOR="+strconv.Itoa(workFactor))
	}
	return env
}

// AgeEncryptPassphrase encrypts to an scrypt passphrase with stock age via
// the batchpass plugin; workFactor 0 keeps age's default (18, ~1 s), tests
// can pass e.g. 10 to stay fast.
func AgeEncryptPassphrase(t testing.TB, plaintext []byte, passphrase string, workFactor int) []byte {
	t.Helper()
	out, err := ageRun(t, plaintext, batchpassEnv(t, passphrase, workFactor), "-e", "-j", "batchpass")
	if err != nil {
		t.Fatalf("%v", err)
	}
	return out
}

// AgeTryDecryptPassphrase decrypts an scrypt (passphrase) file with stock
// age via the batchpass plugin.
func AgeTryDecryptPassphrase(t testing.TB, ciphertext []byte, passphrase string) ([]byte, error) {
	t.Helper()
	return ageRun(t, ciphertext, batchpassEnv(t, passphrase, 0), "-d", "-j", "batchpass")
}

// AgeDecryptPassphrase is AgeTryDecryptPassphrase that fails the test on error.
func AgeDecryptPassphrase(t testing.TB, ciphertext []byte, passphrase string) []byte {
	t.Helper()
	out, err := AgeTryDecryptPassphrase(t, ciphertext, passphrase)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return out
}
