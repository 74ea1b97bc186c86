// Package nixeval runs Debian's Nix (nix-bin, 2.8; no nixpkgs) for the tests
// of the flake and the NixOS module: it evaluates nix/wiring.nix, the one
// definition of what services.pgarchive renders, so that tests/nix and
// tests/nspawn check the same settings, credentials and ExecStartPost lines
// the module produces.
package nixeval

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/tests/harness"
)

// Install is what CI runs to get the Nix evaluator.
const Install = "apt-get update && apt-get install -y nix-bin"

// Need returns the path of a tool, with the harness' policy: under CI a
// missing tool fails the test, elsewhere it is a loud skip.
func Need(t testing.TB, tool, hint string) string {
	t.Helper()
	if p := harness.LookTool(tool); p != "" {
		return p
	}
	Missing(t, tool+" not found", hint)
	return ""
}

// Missing fails under CI and skips with "SKIPPED:" elsewhere.
func Missing(t testing.TB, reason, hint string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("MISSING REQUIREMENT: %s; to fix: %s", reason, hint)
	}
	t.Skipf("SKIPPED: %s (to fix: %s; under CI=true this is a failure)", reason, hint)
}

// Run runs a Nix command and returns stdout; stderr comes back in err.
func Run(t testing.TB, dir string, name string, args ...string) ([]byte, error) {
	t.Helper()
	bin := Need(t, name, Install)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	// Evaluate the same way for everyone: no user nix.conf, no NIX_PATH.
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "NIX_PATH=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes(), nil
}

// EvalJSON evaluates a Nix file called with string arguments and decodes the
// result into v.
func EvalJSON(t testing.TB, file string, strArgs map[string]string, v any) error {
	t.Helper()
	args := []string{"--eval", "--strict", "--json", file}
	for k, val := range strArgs {
		args = append(args, "--argstr", k, val)
	}
	out, err := Run(t, filepath.Dir(file), "nix-instantiate", args...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("decoding %s: %w", out, err)
	}
	return nil
}

// Options mirrors services.pgarchive, with nil for unset secret paths.
type Options struct {
	Remote           string   `json:"remote"`
	Prefix           string   `json:"prefix"`
	Recipients       []string `json:"recipients"`
	RecipientsFile   *string  `json:"recipientsFile"`
	IdentityFile     *string  `json:"identityFile"`
	PassphraseFile   *string  `json:"passphraseFile"`
	RcloneConfigFile *string  `json:"rcloneConfigFile"`
	ExtraArgs        []string `json:"extraArgs"`
}

// Backup mirrors the services.postgresqlBackup options the module reads.
type Backup struct {
	Location    string   `json:"location"`
	Compression string   `json:"compression"`
	BackupAll   bool     `json:"backupAll"`
	Databases   []string `json:"databases"`
}

// Case is one rendering: the options plus where the binary and the settings
// file live (store paths under NixOS, bind mounts in the nspawn test).
type Case struct {
	Cfg        Options `json:"cfg"`
	Backup     Backup  `json:"backup"`
	Program    string  `json:"program"`
	ConfigFile string  `json:"configFile"`
}

// Unit is what the module adds to one postgresqlBackup unit.
type Unit struct {
	DB            string `json:"db"`
	Name          string `json:"name"`
	DumpPath      string `json:"dumpPath"`
	ExecStartPost string `json:"execStartPost"`
}

// Rendered is nix/wiring.nix's output for a Case.
type Rendered struct {
	SettingsJSON string   `json:"settingsJSON"`
	Credentials  []string `json:"credentials"`
	// RootSettingsJSON is root's wrapper's settings: the same, with the
	// secret files themselves instead of credential paths.
	RootSettingsJSON string   `json:"rootSettingsJSON"`
	KeySources       []string `json:"keySources"`
	Units            []Unit   `json:"units"`
}

// Str is a helper for optional paths.
func Str(s string) *string { return &s }

// Defaults returns the module's option defaults with the given key options.
func Defaults() Options {
	return Options{Remote: "archive-target-database:", Recipients: []string{}, ExtraArgs: []string{}}
}

// Render evaluates tests/nix/wiring-case.nix (which imports nix/wiring.nix).
func Render(t testing.TB, c Case) Rendered {
	t.Helper()
	if c.Cfg.Recipients == nil {
		c.Cfg.Recipients = []string{}
	}
	if c.Cfg.ExtraArgs == nil {
		c.Cfg.ExtraArgs = []string{}
	}
	if c.Backup.Databases == nil {
		c.Backup.Databases = []string{}
	}
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var r Rendered
	file := filepath.Join(harness.ModuleRoot(t), "tests", "nix", "wiring-case.nix")
	if err := EvalJSON(t, file, map[string]string{"case": string(js)}, &r); err != nil {
		t.Fatalf("rendering %s: %v", js, err)
	}
	return r
}
