package keys

import (
	"bytes"
	"errors"
	"fmt"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"
)

// Identities are what decrypts archives: the private keys of an identity
// file, or a passphrase. Only the read side (verify --deep, restore, drill)
// loads them, normally on a machine other than the database host.
type Identities struct {
	List  []age.Identity
	Label string // names the source for messages, never the secret
}

// LoadIdentities reads exactly one of identityFile and passphraseFile.
func LoadIdentities(identityFile, passphraseFile string) (*Identities, error) {
	switch {
	case identityFile != "" && passphraseFile != "":
		return nil, errors.New("give --identity-file or --passphrase-file, not both")
	case identityFile != "":
		ids, err := parseIdentityFile(identityFile)
		if err != nil {
			return nil, err
		}
		return &Identities{List: ids, Label: "identity file " + identityFile}, nil
	case passphraseFile != "":
		pass, err := readPassphrase(passphraseFile)
		if err != nil {
			return nil, err
		}
		id, err := age.NewScryptIdentity(pass)
		if err != nil {
			return nil, fmt.Errorf("passphrase file %s: %w", passphraseFile, err)
		}
		return &Identities{List: []age.Identity{id}, Label: "passphrase file " + passphraseFile}, nil
	}
	return nil, errors.New("decrypting needs a key: give --identity-file (age or SSH private key) or --passphrase-file")
}

func parseIdentityFile(path string) ([]age.Identity, error) {
	data, err := readKeyFile("identity file", path)
	if err != nil {
		return nil, err
	}
	switch shapeOf(data) {
	case ageEncrypted:
		return nil, fmt.Errorf("identity file %s is itself age-encrypted, which pgarchive cannot unlock unattended: decrypt it first (it stays secret: keep it on a tmpfs)", path)
	case sshPrivateKey:
		id, err := agessh.ParseIdentity(data)
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, fmt.Errorf("identity file %s is a passphrase-protected SSH key, which pgarchive cannot unlock unattended", path)
		}
		if err != nil {
			return nil, fmt.Errorf("identity file %s: not a usable SSH private key: %w", path, err)
		}
		return []age.Identity{id}, nil
	}
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("identity file %s: %w", path, err)
	}
	return ids, nil
}
