// Package keys turns the key flags into age recipients. Only public halves are
// ever derived or described: an identity file is read to compute its own
// recipient (as `age -e -i` does), and a passphrase becomes an scrypt
// recipient. Errors name the file and line but never echo key material.
package keys

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"

	"github.com/pgarchive/pgarchive/internal/config"
	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/redact"
)

// maxKeyFile bounds how much of a key file is read, as age does.
const maxKeyFile = 16 << 20

// Sources are the key settings after flag/env/file precedence.
type Sources struct {
	Recipients     []string
	RecipientsFile string
	IdentityFile   string
	PassphraseFile string
}

// Keys are the recipients an archive is encrypted to, with their public
// descriptions for the manifest.
type Keys struct {
	Recipients []age.Recipient
	Described  []manifest.Recipient
}

func (k *Keys) add(r age.Recipient, kind, fingerprint string) {
	k.Recipients = append(k.Recipients, r)
	k.Described = append(k.Described, manifest.Recipient{Kind: kind, Fingerprint: fingerprint})
}

// Load reads every key source and checks that age accepts the combination.
func Load(s Sources) (*Keys, error) {
	if err := config.ValidateKeySources(s.Recipients, s.RecipientsFile, s.IdentityFile, s.PassphraseFile, true); err != nil {
		return nil, err
	}
	k := &Keys{}
	for i, r := range s.Recipients {
		if err := k.addRecipient(strings.TrimSpace(r)); err != nil {
			return nil, fmt.Errorf("--recipient #%d: %w", i+1, err)
		}
	}
	if s.RecipientsFile != "" {
		if err := k.addRecipientsFile(s.RecipientsFile); err != nil {
			return nil, err
		}
	}
	if s.IdentityFile != "" {
		if err := k.addIdentityFile(s.IdentityFile); err != nil {
			return nil, err
		}
	}
	if s.PassphraseFile != "" {
		if err := k.addPassphraseFile(s.PassphraseFile); err != nil {
			return nil, err
		}
	}
	// age refuses some mixes (post-quantum with classic recipients); find out
	// now, before anything is read or uploaded.
	if _, err := age.Encrypt(io.Discard, k.Recipients...); err != nil {
		return nil, fmt.Errorf("these keys cannot be used together: %w", err)
	}
	return k, nil
}

func readKeyFile(what, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("%s %s: larger than %d bytes", what, path, maxKeyFile)
	}
	return data, nil
}

// addRecipient accepts what `age -r` accepts, minus plugins.
func (k *Keys) addRecipient(s string) error {
	switch {
	case strings.HasPrefix(s, "age1pq1"):
		r, err := age.ParseHybridRecipient(s)
		if err != nil {
			return fmt.Errorf("malformed post-quantum recipient: %w", err)
		}
		k.add(r, "mlkem768x25519", fingerprint(s))
	case strings.HasPrefix(s, "age1"):
		r, err := age.ParseX25519Recipient(s)
		if err != nil {
			if i := strings.LastIndexByte(s, '1'); i > len("age1") {
				return fmt.Errorf("looks like a plugin recipient (%s...), which pgarchive does not support", s[:i])
			}
			return fmt.Errorf("malformed X25519 recipient: %w", err)
		}
		k.add(r, "x25519", fingerprint(s))
	case strings.HasPrefix(s, "ssh-"):
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
		if err != nil {
			return fmt.Errorf("malformed SSH recipient: %w", err)
		}
		r, err := agessh.ParseRecipient(s)
		if err != nil {
			return fmt.Errorf("SSH recipient: %w", err)
		}
		k.add(r, pk.Type(), ssh.FingerprintSHA256(pk))
	case strings.HasPrefix(strings.ToUpper(s), "AGE-SECRET-KEY-"):
		return errors.New("this is a secret key (an identity), not a recipient: pass it with --identity-file")
	case s == "":
		return errors.New("empty recipient")
	default:
		return errors.New("unknown recipient type (expected age1..., age1pq1..., ssh-ed25519 or ssh-rsa)")
	}
	return nil
}

func (k *Keys) addRecipientsFile(path string) error {
	data, err := readKeyFile("recipients file", path)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), maxKeyFile)
	found := 0
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if err := k.addRecipient(text); err != nil {
			return fmt.Errorf("recipients file %s, line %d: %w", path, line, err)
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("recipients file %s: %w", path, err)
	}
	if found == 0 {
		return fmt.Errorf("recipients file %s: no recipients found", path)
	}
	return nil
}

// addIdentityFile encrypts to the identity's own recipient, like `age -e -i`.
func (k *Keys) addIdentityFile(path string) error {
	data, err := readKeyFile("identity file", path)
	if err != nil {
		return err
	}
	switch shapeOf(data) {
	case ageEncrypted:
		return fmt.Errorf("identity file %s is itself age-encrypted, which pgarchive cannot unlock unattended: give it the plain identity or its public recipient", path)
	case sshPrivateKey:
		return k.addSSHIdentity(path, data)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("identity file %s: %w", path, err)
	}
	for _, id := range ids {
		switch id := id.(type) {
		case *age.X25519Identity:
			r := id.Recipient()
			k.add(r, "x25519", fingerprint(r.String()))
		case *age.HybridIdentity:
			r := id.Recipient()
			k.add(r, "mlkem768x25519", fingerprint(r.String()))
		default:
			return fmt.Errorf("identity file %s: unsupported identity type %T", path, id)
		}
	}
	return nil
}

func (k *Keys) addSSHIdentity(path string, pemBytes []byte) error {
	var pub ssh.PublicKey
	raw, err := ssh.ParseRawPrivateKey(pemBytes)
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing) && missing.PublicKey != nil:
		// Encrypting needs only the public half, which OpenSSH keys carry in clear.
		pub = missing.PublicKey
	case err != nil:
		return fmt.Errorf("identity file %s: not a usable SSH private key: %w", path, err)
	default:
		signer, err := ssh.NewSignerFromKey(raw)
		if err != nil {
			return fmt.Errorf("identity file %s: %w", path, err)
		}
		pub = signer.PublicKey()
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	r, err := agessh.ParseRecipient(line)
	if err != nil {
		return fmt.Errorf("identity file %s: %w", path, err)
	}
	k.add(r, pub.Type(), ssh.FingerprintSHA256(pub))
	return nil
}

func (k *Keys) addPassphraseFile(path string) error {
	pass, err := readPassphrase(path)
	if err != nil {
		return err
	}
	r, err := age.NewScryptRecipient(pass)
	if err != nil {
		return fmt.Errorf("passphrase file %s: %w", path, err)
	}
	k.add(r, "scrypt", "")
	return nil
}

// readPassphrase returns the first line of a passphrase file.
func readPassphrase(path string) (string, error) {
	data, err := readKeyFile("passphrase file", path)
	if err != nil {
		return "", err
	}
	pass, _, _ := strings.Cut(string(data), "\n")
	pass = strings.TrimSuffix(pass, "\r")
	redact.Default.Add(pass)
	if pass == "" {
		return "", fmt.Errorf("passphrase file %s: the first line is empty", path)
	}
	return pass, nil
}

// Identity files come in three shapes; each reader handles them alike.
type identityShape int

const (
	ageIdentities identityShape = iota
	sshPrivateKey
	ageEncrypted // a passphrase-protected age identity file: needs a human
)

func shapeOf(data []byte) identityShape {
	trimmed := bytes.TrimSpace(data)
	switch {
	case bytes.HasPrefix(trimmed, []byte("age-encryption.org/")), bytes.HasPrefix(trimmed, []byte("-----BEGIN AGE ENCRYPTED FILE")):
		return ageEncrypted
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN")):
		return sshPrivateKey
	}
	return ageIdentities
}

// fingerprint identifies a public key without repeating it in full.
func fingerprint(public string) string {
	sum := sha256.Sum256([]byte(public))
	return "sha256:" + hex.EncodeToString(sum[:16])
}
