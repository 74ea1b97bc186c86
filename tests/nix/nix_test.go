// Tests of the flake's Nix files that run without nixpkgs: every .nix file
// parses, flake.lock matches the verified pin, go.mod fits the pinned Go,
// vendorHash is current, and the settings the module renders pass the
// helper's own check-config and drive it the way the root wrapper does.
// module_test.go adds evaluation with nixpkgs' lib when NIXPKGS_LIB is set.
package nix_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
	"github.com/pgarchive/pgarchive/tests/nix/nixeval"
)

func TestEveryNixFileParses(t *testing.T) {
	root := harness.ModuleRoot(t)
	var files []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "vendor" || d.Name() == "node_modules" || d.Name() == "result") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".nix") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"flake.nix", "nix/package.nix", "nix/module.nix", "nix/wiring.nix", "nix/units.nix", "nix/drill.nix", "nix/prune.nix", "nix/backlog-metrics.nix", "nix/authenticity.nix", "nix/notify.nix", "nix/status.nix", "nix/wrapper.nix", "nix/common.nix", "nix/hardening.nix", "nix/vm-test.nix", "nix/module-eval-check.nix", "nix/wal.nix"} {
		if _, err := os.Stat(filepath.Join(root, want)); err != nil {
			t.Errorf("missing %s", want)
		}
	}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		t.Run(rel, func(t *testing.T) {
			if _, err := nixeval.Run(t, root, "nix-instantiate", "--parse", f); err != nil {
				t.Fatal(err)
			}
		})
	}
}

type pin struct {
	Original map[string]any `json:"original"`
	Locked   map[string]any `json:"locked"`
}

func TestFlakeLockMatchesPin(t *testing.T) {
	root := harness.ModuleRoot(t)
	var lock struct {
		Version int    `json:"version"`
		Root    string `json:"root"`
		Nodes   map[string]struct {
			Inputs   map[string]any `json:"inputs"`
			Locked   map[string]any `json:"locked"`
			Original map[string]any `json:"original"`
		} `json:"nodes"`
	}
	data, err := os.ReadFile(filepath.Join(root, "flake.lock"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &lock); err != nil {
		t.Fatalf("flake.lock: %v", err)
	}
	if lock.Version != 7 || lock.Root != "root" {
		t.Fatalf("flake.lock: version %d, root %q; want 7 and \"root\"", lock.Version, lock.Root)
	}
	if got := lock.Nodes["root"].Inputs["nixpkgs"]; got != "nixpkgs" {
		t.Fatalf("nodes.root.inputs.nixpkgs = %v, want \"nixpkgs\"", got)
	}
	if len(lock.Nodes) != 2 {
		t.Errorf("flake.lock has %d nodes, want root and nixpkgs only", len(lock.Nodes))
	}
	np := lock.Nodes["nixpkgs"]
	if !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(str(np.Locked["rev"])) ||
		!regexp.MustCompile(`^sha256-[A-Za-z0-9+/]{43}=$`).MatchString(str(np.Locked["narHash"])) {
		t.Errorf("nixpkgs.locked rev/narHash malformed: %v", np.Locked)
	}

	pinPath := os.Getenv("PGARCHIVE_NIXPKGS_PIN")
	if pinPath == "" {
		pinPath = filepath.Join(root, "..", "shared", "nixpkgs-pin.json")
	}
	pinData, err := os.ReadFile(pinPath)
	if err != nil {
		nixeval.Missing(t, "no nixpkgs pin at "+pinPath, "run from a checkout with shared/ beside it, or set PGARCHIVE_NIXPKGS_PIN")
	}
	var p pin
	if err := json.Unmarshal(pinData, &p); err != nil {
		t.Fatalf("%s: %v", pinPath, err)
	}
	if !jsonEqual(np.Locked, p.Locked) {
		t.Errorf("nixpkgs.locked = %v\nwant the pin %v", np.Locked, p.Locked)
	}
	if !jsonEqual(np.Original, p.Original) {
		t.Errorf("nixpkgs.original = %v\nwant the pin %v", np.Original, p.Original)
	}

	// flake.nix must ask for the branch the lock pins.
	out, err := nixeval.Run(t, root, "nix-instantiate", "--eval", "--strict", "--json", "-E",
		"(import ./flake.nix).inputs.nixpkgs.url")
	if err != nil {
		t.Fatal(err)
	}
	want := strconv.Quote("github:" + str(p.Original["owner"]) + "/" + str(p.Original["repo"]) + "/" + str(p.Original["ref"]))
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("flake.nix inputs.nixpkgs.url = %s, want %s", got, want)
	}
}

func str(v any) string { s, _ := v.(string); return s }

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// nixos-25.11 builds with buildGo125Module and GOTOOLCHAIN=local, so a go.mod
// asking for a newer Go breaks `nix build` long before anyone runs it.
func TestGoModFitsBuildGo125Module(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(harness.ModuleRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^(go|toolchain)\s+(?:go)?(\d+)\.(\d+)`).FindAllStringSubmatch(string(data), -1) {
		major, _ := strconv.Atoi(m[2])
		minor, _ := strconv.Atoi(m[3])
		if major > 1 || minor > 25 {
			t.Errorf("go.mod: %q needs Go %d.%d, but nix/package.nix uses nixos-25.11's buildGo125Module (Go 1.25); keep go.mod at go 1.25.x or move the flake to a nixpkgs with a newer buildGoModule", m[0], major, minor)
		}
	}
}

func TestSourceSubsetExists(t *testing.T) {
	root := harness.ModuleRoot(t)
	var paths []string
	if err := nixeval.EvalJSON(t, filepath.Join(root, "nix", "source.nix"), nil, &paths); err != nil {
		t.Fatal(err)
	}
	for _, p := range append(paths, "cmd/pgarchive/main.go") {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("nix/source.nix: %v", err)
		}
	}
}

func TestVendorHashIsCurrent(t *testing.T) {
	root := harness.ModuleRoot(t)
	nixeval.Need(t, "nix", nixeval.Install)
	nixeval.Need(t, "nix-instantiate", nixeval.Install)
	harness.Need(t, "go")
	cmd := exec.Command("bash", filepath.Join(root, "nix", "update-vendor-hash.sh"), "--check")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(harness.LookTool("go"))+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out))
}

// settingsCases are option sets the module may be given; each must render a
// settings file that the helper accepts at build time.
func settingsCases() map[string]nixeval.Case {
	withKey := func(f func(*nixeval.Options)) nixeval.Options {
		o := nixeval.Defaults()
		o.RcloneConfigFile = nixeval.Str("/run/secrets/pgarchive/rclone.conf")
		f(&o)
		return o
	}
	perDB := nixeval.Backup{Location: "/var/backup/postgresql", Compression: "gzip", Databases: []string{"db1", "db2"}}
	return map[string]nixeval.Case{
		"recipients-gzip": {Cfg: withKey(func(o *nixeval.Options) {
			o.Recipients = []string{"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN"}
		}), Backup: perDB},
		"recipientsFile-zstd-prefix": {Cfg: withKey(func(o *nixeval.Options) {
			o.RecipientsFile = nixeval.Str("/run/secrets/pgarchive/recipients")
			o.Prefix = "hosts/pg1"
			o.Remote = "offsite:"
		}), Backup: nixeval.Backup{Location: "/srv/dumps", Compression: "zstd", Databases: []string{"db1"}}},
		"identityFile-none-all": {Cfg: withKey(func(o *nixeval.Options) {
			o.IdentityFile = nixeval.Str("/run/agenix/pgarchive-identity")
		}), Backup: nixeval.Backup{Location: "/var/backup/postgresql", Compression: "none", BackupAll: true}},
		"passphraseFile-gzip": {Cfg: withKey(func(o *nixeval.Options) {
			o.PassphraseFile = nixeval.Str("/run/secrets/pgarchive/passphrase")
		}), Backup: perDB},
	}
}

func TestRenderedSettingsPassCheckConfig(t *testing.T) {
	bin := harness.BuildBinary(t, "./cmd/pgarchive")
	dir := t.TempDir()
	for name, c := range settingsCases() {
		t.Run(name, func(t *testing.T) {
			r := nixeval.Render(t, c)
			if len(r.KeySources) != 1 {
				t.Fatalf("key sources %v, want exactly one", r.KeySources)
			}
			var s map[string]any
			if err := json.Unmarshal([]byte(r.SettingsJSON), &s); err != nil {
				t.Fatal(err)
			}
			if s["dump-dir"] != c.Backup.Location || s["dump-compression"] != c.Backup.Compression || s["remote"] != c.Cfg.Remote {
				t.Errorf("settings %s do not carry location, compression and remote of %+v", r.SettingsJSON, c)
			}
			// Secrets reach the store file only as credential paths.
			for _, secret := range []*string{c.Cfg.RcloneConfigFile, c.Cfg.RecipientsFile, c.Cfg.IdentityFile, c.Cfg.PassphraseFile} {
				if secret != nil && strings.Contains(r.SettingsJSON, *secret) {
					t.Errorf("settings file names the secret path %s: %s", *secret, r.SettingsJSON)
				}
			}
			if s["rclone-config"] != "$CREDENTIALS_DIRECTORY/rclone.conf" {
				t.Errorf("rclone-config = %v", s["rclone-config"])
			}
			f := filepath.Join(dir, name+".json")
			if err := os.WriteFile(f, []byte(r.SettingsJSON), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(bin, "check-config", f).CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != f+": ok" {
				t.Fatalf("check-config %s: %v\n%s\nsettings: %s", f, err, out, r.SettingsJSON)
			}
		})
	}

	// The build-time check must bite: a secret key pasted into recipients.
	t.Run("secret-key-in-recipients-is-rejected", func(t *testing.T) {
		c := settingsCases()["recipients-gzip"]
		c.Cfg.Recipients = []string{"AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ"}
		r := nixeval.Render(t, c)
		f := filepath.Join(dir, "bad.json")
		if err := os.WriteFile(f, []byte(r.SettingsJSON), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "check-config", f).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "secret key") {
			t.Fatalf("check-config accepted a secret key as recipient: %v\n%s", err, out)
		}
	})
}

// The root wrapper runs `pgarchive --config <its own settings> ...` outside
// any unit: its settings must name the secret files themselves where the
// units' name $CREDENTIALS_DIRECTORY paths, or manual runs would fail for
// want of credentials.
func TestRootSettingsReplaceCredentialPaths(t *testing.T) {
	bin := harness.BuildBinary(t, "./cmd/pgarchive")
	dir := t.TempDir()
	identity, _ := harness.AgeKeygen(t, false)
	upstream := filepath.Join(dir, "upstream")
	if err := os.MkdirAll(upstream, 0o700); err != nil {
		t.Fatal(err)
	}
	rclone := harness.WriteRcloneConf(t, dir, harness.UnionSection(harness.UnionName, upstream))

	dumpDir := filepath.Join(dir, "dumps")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("CREATE TABLE t (v text);\n-- wrapper-marker\n-- PostgreSQL database dump complete\n"))
	zw.Close()
	if err := os.MkdirAll(dumpDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dumpDir, "db1.sql.gz"), gz.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	o := nixeval.Defaults()
	o.RcloneConfigFile, o.IdentityFile = &rclone, &identity
	r := nixeval.Render(t, nixeval.Case{Cfg: o, Backup: nixeval.Backup{Location: dumpDir, Compression: "gzip", Databases: []string{"db1"}}})
	conf := filepath.Join(dir, "pgarchive.json")
	if err := os.WriteFile(conf, []byte(r.SettingsJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CREDENTIALS_DIRECTORY=") && !strings.HasPrefix(kv, "JOURNAL_STREAM=") && !strings.HasPrefix(kv, "RCLONE_CONFIG") {
			env = append(env, kv)
		}
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	if out, err := run("--config", conf, "archive", "--database", "db1"); err == nil || !strings.Contains(out, "CREDENTIALS_DIRECTORY") {
		t.Fatalf("with the units' settings the run should fail on $CREDENTIALS_DIRECTORY: %v\n%s", err, out)
	}
	if strings.Contains(r.RootSettingsJSON, "CREDENTIALS_DIRECTORY") {
		t.Fatalf("root's settings name credential paths: %s", r.RootSettingsJSON)
	}
	rootConf := filepath.Join(dir, "pgarchive-root.json")
	if err := os.WriteFile(rootConf, []byte(r.RootSettingsJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--config", rootConf, "archive", "--database", "db1"}
	if out, err := run(args...); err != nil {
		t.Fatalf("pgarchive %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	found, _ := filepath.Glob(filepath.Join(upstream, "db1", "db1_*.sql.gz.age"))
	if len(found) != 1 {
		t.Fatalf("archives in %s: %v", upstream, found)
	}
	ct, err := os.ReadFile(found[0])
	if err != nil {
		t.Fatal(err)
	}
	if pt := harness.AgeDecrypt(t, ct, "-i", identity); !bytes.Equal(pt, gz.Bytes()) {
		t.Fatalf("decrypted archive differs from the dump")
	}
}

// pkgs.minio is marked insecure in nixpkgs (abandoned upstream): a flake
// output that used it would make `nix flake check` and `nix develop`
// refuse to evaluate. The VM test uses Garage, which nixpkgs maintains.
func TestNoMinioInFlakeOutputs(t *testing.T) {
	root := harness.ModuleRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, "nix", "*.nix"))
	files = append(files, filepath.Join(root, "flake.nix"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.ToLower(string(b)), "minio") {
			t.Errorf("%s mentions minio", f)
		}
	}
	vm, _ := os.ReadFile(filepath.Join(root, "nix", "vm-test.nix"))
	if !strings.Contains(string(vm), "services.garage") || !strings.Contains(string(vm), "pkgs.garage_2") {
		t.Error("the VM test does not run Garage")
	}
}
