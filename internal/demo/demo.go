// Package demo sets up a throwaway world in which `pgarchive demo` runs the
// real archive job: two local folders joined in an rclone union named like
// the seed setup's, a freshly generated age identity, and a gzip'd sample
// dump (or the caller's own). Nothing outside the chosen directory is touched.
package demo

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"filippo.io/age"

	"github.com/pgarchive/pgarchive/internal/sign"
)

//go:embed sample.sql
var sampleSQL []byte

// World is the demo's files.
type World struct {
	Dir          string
	Upstreams    []string
	RcloneConfig string
	IdentityFile string
	Recipient    string
	Dump         string
	Remote       string
	// SigningKey signs the demo's manifests; TrustedSigners holds its
	// public half, and Settings (a settings file naming the rclone.conf
	// and the trusted signers) makes every reader check signatures.
	SigningKey     string
	TrustedSigners string
	Settings       string
}

// Setup creates the world under dir.
func Setup(dir string) (*World, error) {
	w := &World{Dir: dir, Remote: "archive-target-database:"}
	for _, d := range []string{"upstream-a", "upstream-b", "dumps"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	w.Upstreams = []string{filepath.Join(dir, "upstream-a"), filepath.Join(dir, "upstream-b")}
	w.RcloneConfig = filepath.Join(dir, "rclone.conf")
	conf := fmt.Sprintf(`# The seed setup's union, with two local folders as its upstreams.
[archive-target-database]
type = union
upstreams = %q %q
action_policy = all
create_policy = all
search_policy = ff
`, w.Upstreams[0], w.Upstreams[1])
	if err := os.WriteFile(w.RcloneConfig, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	w.Recipient = id.Recipient().String()
	w.IdentityFile = filepath.Join(dir, "identity.txt")
	if err := os.WriteFile(w.IdentityFile, []byte("# demo identity: keep it off the database host in real use\n"+id.String()+"\n"), 0o600); err != nil {
		return nil, err
	}
	if err := w.signingKey(); err != nil {
		return nil, err
	}
	w.Dump = filepath.Join(dir, "dumps", "demo.sql.gz")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(sampleSQL)
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if err := os.WriteFile(w.Dump, gz.Bytes(), 0o600); err != nil {
		return nil, err
	}
	return w, nil
}

// signingKey writes an OpenSSH ed25519 key pair, the trusted-signers file
// with its public half, and the settings file that trusts it.
func (w *World) signingKey() error {
	w.SigningKey = filepath.Join(w.Dir, "signing_key")
	w.TrustedSigners = filepath.Join(w.Dir, "trusted_signers")
	w.Settings = filepath.Join(w.Dir, "pgarchive.json")
	line, err := sign.GenerateKey(w.SigningKey, "pgarchive-demo")
	if err != nil {
		return err
	}
	settings, err := json.MarshalIndent(map[string]string{"rclone-config": w.RcloneConfig, "trusted-signers-file": w.TrustedSigners}, "", "  ")
	if err != nil {
		return err
	}
	for _, f := range []struct {
		path string
		data []byte
	}{
		{w.TrustedSigners, []byte("# who may sign archives: the demo's signing_key\n" + line + "\n")},
		{w.Settings, append(settings, '\n')},
	} {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// Decrypt proves a stored copy opens with the demo identity and equals the dump.
func (w *World) Decrypt(stored string) error {
	idFile, err := os.Open(w.IdentityFile)
	if err != nil {
		return err
	}
	defer idFile.Close()
	ids, err := age.ParseIdentities(idFile)
	if err != nil {
		return err
	}
	f, err := os.Open(stored)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := age.Decrypt(f, ids...)
	if err != nil {
		return fmt.Errorf("%s: %w", stored, err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("%s: %w", stored, err)
	}
	want, err := os.ReadFile(w.Dump)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%s does not decrypt to %s", stored, w.Dump)
	}
	return nil
}
