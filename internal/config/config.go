// Package config reads the JSON settings file that the NixOS module writes
// into the store (non-secret settings only; secrets are paths read at run
// time). Keys are the long flag names, so one vocabulary serves the command
// line, the environment and the file. Precedence, applied by the caller:
// flag > environment > file > built-in default.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rclone/rclone/fs"

	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/sign"
)

// MaxSize bounds the file: it holds a handful of settings.
const MaxSize = 1 << 20

// File mirrors the global flags. Empty means "not set in the file".
type File struct {
	RcloneConfig    string   `json:"rclone-config,omitempty"`
	Remote          string   `json:"remote,omitempty"`
	Prefix          string   `json:"prefix,omitempty"`
	Recipients      []string `json:"recipients,omitempty"`
	RecipientsFile  string   `json:"recipients-file,omitempty"`
	IdentityFile    string   `json:"identity-file,omitempty"`
	PassphraseFile  string   `json:"passphrase-file,omitempty"`
	DumpDir         string   `json:"dump-dir,omitempty"`
	DumpCompression string   `json:"dump-compression,omitempty"`
	LogTarget       string   `json:"log-target,omitempty"`
	PgBin           string   `json:"pg-bin,omitempty"`
	StateDir        string   `json:"state-dir,omitempty"`
	BacklogMaxSize  string   `json:"backlog-max-size,omitempty"`
	MetricsDir      string   `json:"metrics-dir,omitempty"`
	// Authenticity: the archive host's signing key (a secret's path), the
	// readers' trusted public keys, and how far ahead of the reader's
	// clock an archive's name may be.
	SigningKey         string   `json:"signing-key,omitempty"`
	TrustedSigners     []string `json:"trusted-signers,omitempty"`
	TrustedSignersFile string   `json:"trusted-signers-file,omitempty"`
	MaxClockSkew       string   `json:"max-clock-skew,omitempty"`

	// Sections for the scheduled commands (see commands.go).
	Drill  *DrillSection  `json:"drill,omitempty"`
	Status *StatusSection `json:"status,omitempty"`
	Prune  *PruneSection  `json:"prune,omitempty"`
}

// Load reads and validates a settings file; errors name the file.
func Load(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	cfg, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes strictly (unknown keys are typos, not extensions) and validates.
func Parse(r io.Reader) (*File, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("larger than %d bytes", MaxSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var cfg File
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("not a valid settings object: %w", err)
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON object")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Validate checks what can be checked without touching secrets or the network.
func (c *File) Validate() error {
	if c.Remote != "" {
		if err := ValidateRemote(c.Remote); err != nil {
			return err
		}
	}
	if _, err := naming.CleanPrefix(c.Prefix); err != nil {
		return err
	}
	if c.DumpCompression != "" {
		if _, err := naming.CompressionByName(c.DumpCompression); err != nil {
			return err
		}
	}
	if c.LogTarget != "" {
		if err := ValidateLogTarget(c.LogTarget); err != nil {
			return err
		}
	}
	if c.BacklogMaxSize != "" {
		if _, err := ParseSize(c.BacklogMaxSize); err != nil {
			return fmt.Errorf("backlog-max-size: %w", err)
		}
	}
	if c.MaxClockSkew != "" {
		if _, err := ParseClockSkew(c.MaxClockSkew); err != nil {
			return fmt.Errorf("max-clock-skew: %w", err)
		}
	}
	for i, s := range c.TrustedSigners {
		if strings.Contains(s, "PRIVATE KEY") {
			return fmt.Errorf("trusted-signers[%d] is a private key: only public keys belong in this file", i)
		}
	}
	if _, err := sign.ParseTrusted("trusted-signers", c.TrustedSigners); err != nil {
		return err
	}
	for i, r := range c.Recipients {
		if strings.TrimSpace(r) == "" {
			return fmt.Errorf("recipients[%d] is empty", i)
		}
		if strings.HasPrefix(strings.ToUpper(r), "AGE-SECRET-KEY-") {
			return fmt.Errorf("recipients[%d] is a secret key, not a recipient: it must never be in this file", i)
		}
	}
	for name, p := range map[string]string{
		"rclone-config": c.RcloneConfig, "recipients-file": c.RecipientsFile,
		"identity-file": c.IdentityFile, "passphrase-file": c.PassphraseFile, "dump-dir": c.DumpDir,
		"pg-bin": c.PgBin, "state-dir": c.StateDir, "metrics-dir": c.MetricsDir,
		"signing-key": c.SigningKey, "trusted-signers-file": c.TrustedSignersFile,
	} {
		if strings.ContainsRune(p, 0) {
			return fmt.Errorf("%s contains a NUL byte", name)
		}
	}
	if err := c.validateSections(); err != nil {
		return err
	}
	return ValidateKeySources(c.Recipients, c.RecipientsFile, c.IdentityFile, c.PassphraseFile, false)
}

// ValidateKeySources enforces age's rules on combining keys: public-key
// sources combine freely; a passphrase (scrypt) must stand alone. With
// required, having no key at all is an error, because archive must never
// upload plaintext.
func ValidateKeySources(recipients []string, recipientsFile, identityFile, passphraseFile string, required bool) error {
	public := len(recipients) > 0 || recipientsFile != "" || identityFile != ""
	if passphraseFile != "" && public {
		return errors.New("passphrase-file cannot be combined with recipients, recipients-file or identity-file (age's scrypt recipient must be the only one)")
	}
	if required && !public && passphraseFile == "" {
		return errors.New("no encryption key: set --recipient, --recipients-file, --identity-file or --passphrase-file (pgarchive never uploads plaintext)")
	}
	return nil
}

// ValidateRemote accepts rclone remote strings such as "name:", "name:path"
// or a local path; it rejects only what rclone could never parse.
func ValidateRemote(remote string) error {
	if strings.TrimSpace(remote) == "" {
		return errors.New("remote is empty")
	}
	if strings.ContainsAny(remote, "\x00\n\r") {
		return fmt.Errorf("remote %q contains a control character", remote)
	}
	return nil
}

// LogTargets are the accepted values of --log-target.
var LogTargets = []string{"auto", "journal", "stderr"}

// ValidateLogTarget checks a --log-target value.
func ValidateLogTarget(t string) error {
	for _, v := range LogTargets {
		if t == v {
			return nil
		}
	}
	return fmt.Errorf("log-target %q: expected one of %s", t, strings.Join(LogTargets, ", "))
}

// ExpandCredentials replaces a leading $CREDENTIALS_DIRECTORY (or
// ${CREDENTIALS_DIRECTORY}) so that a settings file in the store can point at
// secrets systemd's LoadCredential= provides at run time.
func ExpandCredentials(p string, getenv func(string) string) (string, error) {
	for _, v := range []string{"${CREDENTIALS_DIRECTORY}", "$CREDENTIALS_DIRECTORY"} {
		rest, ok := strings.CutPrefix(p, v)
		if !ok {
			continue
		}
		dir := getenv("CREDENTIALS_DIRECTORY")
		if dir == "" {
			return "", fmt.Errorf("%s refers to $CREDENTIALS_DIRECTORY, which is not set (is the unit missing LoadCredential=?)", p)
		}
		return strings.TrimRight(dir, "/") + rest, nil
	}
	return p, nil
}

// ParseSize reads a size the way rclone writes them (512Mi, 10G, 1Ti; a bare
// number is KiB, as in rclone) and refuses negative ones.
func ParseSize(v string) (int64, error) {
	var n fs.SizeSuffix
	if err := n.Set(v); err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("%q is negative", v)
	}
	return int64(n), nil
}

// ParseClockSkew reads --max-clock-skew: a Go duration, not negative.
func ParseClockSkew(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", v)
	}
	return d, nil
}
