package nix_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
	"github.com/pgarchive/pgarchive/tests/nix/nixeval"
)

// TestSecretsStayOutOfTheStore evaluates the full host with every secret
// option pointing at a real file, in read-write mode against an empty store
// of its own: no secret's content may reach the evaluation's output (units,
// settings, wrapper) or the store.
func TestSecretsStayOutOfTheStore(t *testing.T) {
	lib := nixpkgsLib(t)
	dir := t.TempDir()
	secrets := map[string]string{}
	path := func(name string) string {
		p := filepath.Join(dir, "secrets", name)
		secrets[p] = "SECRET-CONTENT-" + strings.ToUpper(name) + "-5b1e"
		return p
	}
	os.MkdirAll(filepath.Join(dir, "secrets"), 0o700)
	host := fullHost()
	pg := host["services"].(m)["pgarchive"].(m)
	pg["rcloneConfigFile"] = path("rclone.conf")
	pg["environmentFile"] = path("env")
	pg["prune"].(m)["rcloneConfigFile"] = path("rclone-prune.conf")
	pg["notify"].(m)["webhookUrlFile"] = path("webhook-url")
	pg["drill"].(m)["identityFile"] = path("identity")
	pg["status"].(m)["rcloneConfigFile"] = path("rclone-status.conf")
	delete(pg, "recipients")
	pg["recipientsFile"] = path("recipients")
	for p, content := range secrets {
		if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	js, _ := json.Marshal([]any{host})
	storeRoot := filepath.Join(dir, "store")
	file := filepath.Join(harness.ModuleRoot(t), "tests", "nix", "stub", "eval.nix")
	out, err := nixeval.Run(t, filepath.Dir(file), "nix-instantiate", "--read-write-mode", "--store", storeRoot,
		"--eval", "--strict", "--json", file, "--argstr", "libDir", lib, "--argstr", "cases", string(js))
	if err != nil {
		t.Fatal(err)
	}
	var res evalResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	got := res.Cases[0]
	for p, content := range secrets {
		if strings.Contains(string(out), content) {
			t.Errorf("the content of %s is in the evaluated configuration", p)
		}
	}
	// The paths themselves appear only where systemd and root read them:
	// LoadCredential=, EnvironmentFile= and the wrapper, never a settings file.
	for _, s := range []settingsFile{{got.ConfigPath, got.ConfigJSON, ""}, {got.Drill.ConfigPath, got.Drill.ConfigJSON, ""}, got.Prune, got.Summary, got.Status} {
		if strings.Contains(s.JSON, dir) {
			t.Errorf("settings file %s names a secret path: %s", s.Path, s.JSON)
		}
	}
	filepath.WalkDir(storeRoot, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, _ := os.ReadFile(p)
		for sp, content := range secrets {
			if strings.Contains(string(data), content) {
				t.Errorf("%s (from %s) was copied into the store: %s", content, sp, p)
			}
		}
		return nil
	})
}
