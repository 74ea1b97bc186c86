// Package sign makes and checks the signatures that let a reader trust what
// the store says. A manifest is signed with an OpenSSH ed25519 key in the
// SSHSIG format of `ssh-keygen -Y sign` (namespace "pgarchive"), so stock
// OpenSSH can check every signature pgarchive writes:
//
//	ssh-keygen -Y check-novalidate -n pgarchive -s X.manifest.json.sig < X.manifest.json
//
// The signer lives on the database host; the trusted public keys on every
// reader. A reader that holds trusted keys accepts a manifest only when its
// exact bytes carry a valid signature by one of them (Trusted.Check).
package sign

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// Namespace separates pgarchive's signatures from every other use of the
// same key (git commits, files): a signature made for one is refused by
// the other.
const Namespace = "pgarchive"

// MaxSignatureSize bounds what readers accept; an ed25519 SSHSIG is ~300 bytes.
const MaxSignatureSize = 8 << 10

// maxKeyFile bounds a key or trusted-signers file.
const maxKeyFile = 1 << 20

// hash is the digest the signature covers, as ssh-keygen -Y sign uses.
const hash = sshsig.HashSHA512

// Signer signs manifests with one ed25519 private key.
type Signer struct {
	signer ssh.Signer
}

// LoadSigner reads an unencrypted OpenSSH ed25519 private key, such as a
// host's /etc/ssh/ssh_host_ed25519_key. Errors name the file, never its
// content.
func LoadSigner(path string) (*Signer, error) {
	data, err := readBounded(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	raw, err := ssh.ParseRawPrivateKey(data)
	if err != nil {
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, fmt.Errorf("signing key %s is protected by a passphrase: a unit can't type one; use an unencrypted key readable only by the service", path)
		}
		return nil, fmt.Errorf("signing key %s is not an OpenSSH private key (%v)", path, err)
	}
	var key ed25519.PrivateKey
	switch k := raw.(type) {
	case ed25519.PrivateKey:
		key = k
	case *ed25519.PrivateKey:
		key = *k
	default:
		return nil, fmt.Errorf("signing key %s is a %T, not ed25519 (ssh-keygen -t ed25519 makes one)", path, raw)
	}
	s, err := ssh.NewSignerFromKey(key)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	return &Signer{signer: s}, nil
}

// PublicKey is the line to trust this signer with, e.g. in
// --trusted-signer or an allowed_signers file: "ssh-ed25519 AAAA...".
func (s *Signer) PublicKey() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.signer.PublicKey())))
}

// Fingerprint is OpenSSH's SHA256: fingerprint of the public key.
func (s *Signer) Fingerprint() string { return ssh.FingerprintSHA256(s.signer.PublicKey()) }

// Sign returns the armored signature over msg, as ssh-keygen -Y sign writes it.
func (s *Signer) Sign(msg []byte) ([]byte, error) {
	sig, err := sshsig.Sign(bytes.NewReader(msg), s.signer, hash, Namespace)
	if err != nil {
		return nil, err
	}
	return sshsig.Armor(sig), nil
}

// Trusted is the set of public keys whose signatures a reader accepts.
type Trusted struct {
	keys map[string]ssh.PublicKey // by fingerprint
}

// ParseTrusted reads trusted keys, one per line in authorized_keys form
// ("ssh-ed25519 AAAA... comment"); blank lines and # comments are skipped.
// what names the source in errors (a flag or a file).
func ParseTrusted(what string, lines []string) (*Trusted, error) {
	t := &Trusted{keys: map[string]ssh.PublicKey{}}
	if err := t.add(what, lines); err != nil {
		return nil, err
	}
	return t, nil
}

// LoadTrusted combines keys given one by one (--trusted-signer) with a
// file of them (--trusted-signers-file). It returns nil, nil when neither
// names any key: trust is then not configured at all, which is not the
// same as trusting nobody.
func LoadTrusted(keys []string, file string) (*Trusted, error) {
	if len(keys) == 0 && file == "" {
		return nil, nil
	}
	t, err := ParseTrusted("--trusted-signer", keys)
	if err != nil {
		return nil, err
	}
	if file != "" {
		data, err := readBounded(file)
		if err != nil {
			return nil, fmt.Errorf("trusted signers file: %w", err)
		}
		if err := t.add("trusted signers file "+file, strings.Split(string(data), "\n")); err != nil {
			return nil, err
		}
	}
	if len(t.keys) == 0 {
		return nil, errors.New("no trusted signer key was given (the trusted signers file has only comments)")
	}
	return t, nil
}

func (t *Trusted) add(what string, lines []string) error {
	for i, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		pub, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil || len(bytes.TrimSpace(rest)) > 0 {
			return fmt.Errorf("%s, line %d: not an \"ssh-ed25519 AAAA... comment\" public key line", what, i+1)
		}
		if pub.Type() != ssh.KeyAlgoED25519 {
			return fmt.Errorf("%s, line %d: a %s key; pgarchive signs with ed25519 keys only", what, i+1, pub.Type())
		}
		t.keys[ssh.FingerprintSHA256(pub)] = pub
	}
	return nil
}

// Check verifies sig (as armored by Sign) over msg and returns the
// fingerprint of the trusted key that made it. The error says why the
// signature is not accepted: malformed, made by a key not trusted here,
// for another namespace, or not matching msg.
func (t *Trusted) Check(msg, sig []byte) (string, error) {
	s, err := ParseSignature(sig)
	if err != nil {
		return "", err
	}
	fp := ssh.FingerprintSHA256(s.PublicKey)
	pub, ok := t.keys[fp]
	if !ok {
		return "", fmt.Errorf("signed by %s, which is not a trusted signer", fp)
	}
	if s.Namespace != Namespace {
		return "", fmt.Errorf("signature is for namespace %q, not %q", s.Namespace, Namespace)
	}
	if err := sshsig.Verify(bytes.NewReader(msg), s, pub, s.HashAlgorithm, Namespace); err != nil {
		return "", fmt.Errorf("signature by %s does not match the manifest (%v)", fp, err)
	}
	return fp, nil
}

// ParseSignature decodes an armored SSHSIG strictly: bounded in size, one
// PEM block and nothing after it, an ed25519 key and signature, a hash
// ssh-keygen uses. It is the one parser of signatures read from the store.
func ParseSignature(sig []byte) (*sshsig.Signature, error) {
	if len(sig) > MaxSignatureSize {
		return nil, fmt.Errorf("signature is larger than %d bytes", MaxSignatureSize)
	}
	s, err := sshsig.Unarmor(sig)
	if err != nil {
		return nil, fmt.Errorf("signature is not an SSH signature: %v", err)
	}
	if end := bytes.Index(sig, []byte("-----END SSH SIGNATURE-----")); end < 0 ||
		len(bytes.TrimSpace(sig[end+len("-----END SSH SIGNATURE-----"):])) > 0 {
		return nil, errors.New("signature has trailing data")
	}
	if s.PublicKey == nil || s.PublicKey.Type() != ssh.KeyAlgoED25519 || s.Signature == nil || s.Signature.Format != ssh.KeyAlgoED25519 {
		return nil, errors.New("signature is not made with an ed25519 key")
	}
	if s.HashAlgorithm != sshsig.HashSHA512 && s.HashAlgorithm != sshsig.HashSHA256 {
		return nil, fmt.Errorf("signature uses hash %q", s.HashAlgorithm)
	}
	return s, nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxKeyFile)
	}
	return data, nil
}

// GenerateKey writes a new unencrypted OpenSSH ed25519 private key to path
// (mode 0600, as ssh-keygen -t ed25519 -N "" would) and returns its public
// line, ready for --trusted-signer. For the demo and tests; real hosts use
// their SSH host key or a managed secret.
func GenerateKey(path, comment string) (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return "", err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", err
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " " + comment, nil
}
