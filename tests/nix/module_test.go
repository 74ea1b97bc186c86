package nix_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
	"github.com/pgarchive/pgarchive/tests/nix/nixeval"
)

// nixpkgsLib finds nixpkgs' lib from NIXPKGS_LIB (a checkout of
// nix-community/nixpkgs.lib or of nixpkgs, or its lib/ directory), else the
// copy in ../shared/nixpkgs-lib beside the repository, which every clone
// (CI's too) has. Without one the test fails under CI: never a skip.
func nixpkgsLib(t *testing.T) string {
	t.Helper()
	v := os.Getenv("NIXPKGS_LIB")
	if v == "" {
		// The copy every clone has beside it (../shared, CI's too).
		d := filepath.Join(harness.ModuleRoot(t), "..", "shared", "nixpkgs-lib", "lib")
		if _, err := os.Stat(filepath.Join(d, "modules.nix")); err == nil {
			return d
		}
		nixeval.Missing(t, "NIXPKGS_LIB is unset, so the module cannot be evaluated with nixpkgs' lib.evalModules",
			"export a checkout of github:nix-community/nixpkgs.lib outside the repo and set NIXPKGS_LIB to it (or its lib/ dir)")
	}
	for _, d := range []string{filepath.Join(v, "lib"), v} {
		if _, err := os.Stat(filepath.Join(d, "modules.nix")); err == nil {
			return d
		}
	}
	t.Fatalf("NIXPKGS_LIB=%s: neither it nor its lib/ holds nixpkgs' lib (modules.nix)", v)
	return ""
}

type unit struct {
	Description   string         `json:"description"`
	Documentation []string       `json:"documentation"`
	Wants         []string       `json:"wants"`
	After         []string       `json:"after"`
	Requires      []string       `json:"requires"`
	OnFailure     []string       `json:"onFailure"`
	OnSuccess     []string       `json:"onSuccess"`
	ServiceConfig map[string]any `json:"serviceConfig"`
}

// settingsFile is one of the module's build-time checked settings files.
type settingsFile struct {
	Path  string `json:"path"`
	JSON  string `json:"json"`
	Build string `json:"build"`
}

type evalCase struct {
	Units              map[string]unit `json:"units"`
	PackagePath        string          `json:"packagePath"`
	ConfigPath         string          `json:"configPath"`
	ConfigJSON         string          `json:"configJSON"`
	ConfigBuild        string          `json:"configBuild"`
	Wrappers           []struct{ Name, Text string }
	Timers             map[string]timer `json:"timers"`
	Tmpfiles           []string         `json:"tmpfiles"`
	Groups             []string         `json:"groups"`
	Prune              settingsFile     `json:"prune"`
	Summary            settingsFile     `json:"notifySummary"`
	Status             settingsFile     `json:"status"`
	Report             settingsFile     `json:"report"`
	PrometheusRules    []string         `json:"prometheusRuleFiles"`
	Root               settingsFile     `json:"root"`
	PostgresqlSettings map[string]any   `json:"postgresqlSettings"`
	Drill              struct {
		ConfigPath     string  `json:"configPath"`
		ConfigJSON     string  `json:"configJSON"`
		ConfigBuild    string  `json:"configBuild"`
		ChecksPath     *string `json:"checksPath"`
		ChecksJSON     *string `json:"checksJSON"`
		PostgresqlPath string  `json:"postgresqlPath"`
	} `json:"drill"`
}

type timer struct {
	Description string         `json:"description"`
	WantedBy    []string       `json:"wantedBy"`
	TimerConfig map[string]any `json:"timerConfig"`
}

type evalResult struct {
	Flake struct {
		Inputs    map[string]map[string]string   `json:"inputs"`
		Outputs   map[string][]string            `json:"outputs"`
		PerSystem map[string]map[string][]string `json:"perSystem"`
		Package   struct {
			Name          string         `json:"name"`
			Path          string         `json:"path"`
			PgarchivePath string         `json:"pgarchivePath"`
			GoArgs        map[string]any `json:"goArgs"`
		} `json:"package"`
		Overlay          string `json:"overlay"`
		ModuleIsFunction bool   `json:"moduleIsFunction"`
	} `json:"flake"`
	Cases []evalCase `json:"cases"`
}

func evalModule(t *testing.T, lib string, cases []any) (evalResult, error) {
	t.Helper()
	js, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	var r evalResult
	file := filepath.Join(harness.ModuleRoot(t), "tests", "nix", "stub", "eval.nix")
	err = nixeval.EvalJSON(t, file, map[string]string{"libDir": lib, "cases": string(js)}, &r)
	return r, err
}

// services builds a case module: { services = { postgresqlBackup; pgarchive }; }.
func services(backup, pgarchive map[string]any) map[string]any {
	backup["enable"] = true
	pgarchive["enable"] = true
	return map[string]any{"services": map[string]any{"postgresqlBackup": backup, "pgarchive": pgarchive}}
}

type m = map[string]any

const recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"

func TestModuleEvaluation(t *testing.T) {
	lib := nixpkgsLib(t)
	bin := harness.BuildBinary(t, "./cmd/pgarchive")

	type want struct {
		units    map[string]string // unit -> "db dumpPath"
		plain    []string          // units that must stay untouched
		creds    []string
		envFile  string
		extra    string // extraArgs as rendered before "archive"
		settings m
		envLine  bool // the wrapper sources the environment file
	}
	rc := "/run/secrets/pgarchive/rclone.conf"
	cases := []struct {
		name string
		in   map[string]any
		want want
	}{
		{"per-database gzip recipients",
			services(m{"databases": []string{"db1", "db2"}}, m{"recipients": []string{recipient}, "rcloneConfigFile": rc}),
			want{units: map[string]string{"postgresqlBackup-db1": "db1 /var/backup/postgresql/db1.sql.gz", "postgresqlBackup-db2": "db2 /var/backup/postgresql/db2.sql.gz"},
				creds:    []string{"rclone.conf:" + rc},
				settings: m{"remote": "archive-target-database:", "recipients": []any{recipient}, "rclone-config": "$CREDENTIALS_DIRECTORY/rclone.conf", "dump-dir": "/var/backup/postgresql", "dump-compression": "gzip", "state-dir": "/var/lib/pgarchive", "backlog-max-size": "10Gi"}}},
		{"subset zstd recipientsFile",
			services(m{"databases": []string{"db1", "db2"}, "compression": "zstd", "location": "/srv/dumps"},
				m{"recipientsFile": "/run/secrets/rec", "rcloneConfigFile": rc, "databases": []string{"db2"}, "prefix": "hosts/pg1", "remote": "offsite:", "extraArgs": []string{"--verbose"}}),
			want{units: map[string]string{"postgresqlBackup-db2": "db2 /srv/dumps/db2.sql.zstd"}, plain: []string{"postgresqlBackup-db1"},
				creds: []string{"rclone.conf:" + rc, "recipients:/run/secrets/rec"}, extra: " --verbose",
				settings: m{"remote": "offsite:", "prefix": "hosts/pg1", "recipients-file": "$CREDENTIALS_DIRECTORY/recipients", "rclone-config": "$CREDENTIALS_DIRECTORY/rclone.conf", "dump-dir": "/srv/dumps", "dump-compression": "zstd", "state-dir": "/var/lib/pgarchive", "backlog-max-size": "10Gi"}}},
		{"backupAll none identityFile environmentFile",
			services(m{"compression": "none"}, m{"identityFile": "/run/agenix/id", "rcloneConfigFile": rc, "environmentFile": "/run/secrets/pgarchive.env"}),
			want{units: map[string]string{"postgresqlBackup": "all /var/backup/postgresql/all.sql"},
				creds: []string{"rclone.conf:" + rc, "identity:/run/agenix/id"}, envFile: "/run/secrets/pgarchive.env",
				settings: m{"remote": "archive-target-database:", "identity-file": "$CREDENTIALS_DIRECTORY/identity", "rclone-config": "$CREDENTIALS_DIRECTORY/rclone.conf", "dump-dir": "/var/backup/postgresql", "dump-compression": "none", "state-dir": "/var/lib/pgarchive", "backlog-max-size": "10Gi"}, envLine: true}},
		{"explicit backupAll gzip passphraseFile",
			services(m{"backupAll": true}, m{"passphraseFile": "/run/secrets/pass", "rcloneConfigFile": rc}),
			want{units: map[string]string{"postgresqlBackup": "all /var/backup/postgresql/all.sql.gz"},
				creds:    []string{"rclone.conf:" + rc, "passphrase:/run/secrets/pass"},
				settings: m{"remote": "archive-target-database:", "passphrase-file": "$CREDENTIALS_DIRECTORY/passphrase", "rclone-config": "$CREDENTIALS_DIRECTORY/rclone.conf", "dump-dir": "/var/backup/postgresql", "dump-compression": "gzip", "state-dir": "/var/lib/pgarchive", "backlog-max-size": "10Gi"}}},
	}
	var inputs []any
	for _, c := range cases {
		inputs = append(inputs, c.in)
	}
	res, err := evalModule(t, lib, inputs)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("flake outputs", func(t *testing.T) {
		f := res.Flake
		systems := []string{"aarch64-linux", "x86_64-linux"}
		for out, names := range map[string][]string{"packages": systems, "checks": systems, "devShells": systems, "nixosModules": {"default", "pgarchive"}, "overlays": {"default"}} {
			if !reflect.DeepEqual(f.Outputs[out], names) {
				t.Errorf("outputs.%s = %v, want %v", out, f.Outputs[out], names)
			}
		}
		for _, sys := range systems {
			for out, names := range map[string][]string{"packages": {"default", "pgarchive"}, "checks": {"module-eval", "package", "vm"}, "devShells": {"default"}} {
				if got := f.PerSystem[out][sys]; !reflect.DeepEqual(got, names) {
					t.Errorf("%s.%s = %v, want %v", out, sys, got, names)
				}
			}
		}
		if f.Package.Path != f.Package.PgarchivePath || f.Package.Name != "pgarchive-0-unstable-2026-01-02" || f.Overlay != f.Package.Name {
			t.Errorf("package %+v, overlay %s", f.Package, f.Overlay)
		}
		ld, _ := json.Marshal(f.Package.GoArgs["ldflags"])
		if !strings.Contains(string(ld), "-X main.version=0-unstable-2026-01-02+0123abc") {
			t.Errorf("ldflags %s do not stamp the version", ld)
		}
		if !f.ModuleIsFunction {
			t.Errorf("nixosModules are not modules")
		}
	})

	for i, c := range cases {
		got, w := res.Cases[i], c.want
		t.Run(c.name, func(t *testing.T) {
			if got.PackagePath != res.Flake.Package.Path {
				t.Errorf("package defaults to %s, want the flake's %s", got.PackagePath, res.Flake.Package.Path)
			}
			for name, dbAndPath := range w.units {
				u, ok := got.Units[name]
				if !ok {
					t.Fatalf("no unit %s among %v", name, keys(got.Units))
				}
				db, dump, _ := strings.Cut(dbAndPath, " ")
				line := got.PackagePath + "/bin/pgarchive --config " + got.ConfigPath + w.extra + " archive --database " + db + " --file " + dump
				if exec := u.ServiceConfig["ExecStartPost"]; !reflect.DeepEqual(exec, []any{line}) {
					t.Errorf("%s ExecStartPost = %v\nwant [%s]", name, exec, line)
				}
				if lc := u.ServiceConfig["LoadCredential"]; !reflect.DeepEqual(lc, toAny(w.creds)) {
					t.Errorf("%s LoadCredential = %v, want %v", name, lc, w.creds)
				}
				if ef := u.ServiceConfig["EnvironmentFile"]; (w.envFile == "" && ef != nil) || (w.envFile != "" && !reflect.DeepEqual(ef, []any{w.envFile})) {
					t.Errorf("%s EnvironmentFile = %v, want %q", name, ef, w.envFile)
				}
				if u.ServiceConfig["User"] != "postgres" || u.ServiceConfig["Type"] != "oneshot" {
					t.Errorf("%s lost postgresqlBackup's own settings: %v", name, u.ServiceConfig)
				}
				if !contains(u.Wants, "network-online.target") || !contains(u.After, "network-online.target") {
					t.Errorf("%s wants %v after %v, want network-online.target in both", name, u.Wants, u.After)
				}
			}
			for _, name := range w.plain {
				if u := got.Units[name]; u.ServiceConfig["ExecStartPost"] != nil || u.ServiceConfig["LoadCredential"] != nil || contains(u.Wants, "network-online.target") {
					t.Errorf("%s is not selected but was changed: %+v", name, u)
				}
			}
			if len(got.Units) != len(w.units)+len(w.plain) {
				t.Errorf("units %v, want only those of postgresqlBackup", keys(got.Units))
			}

			var s m
			if err := json.Unmarshal([]byte(got.ConfigJSON), &s); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s, w.settings) {
				t.Errorf("settings %s\nwant %v", got.ConfigJSON, w.settings)
			}
			if !strings.Contains(got.ConfigBuild, got.PackagePath+`/bin/pgarchive check-config "$jsonPath"`) {
				t.Errorf("the settings file is not validated at build time: %q", got.ConfigBuild)
			}
			f := filepath.Join(t.TempDir(), "pgarchive.json")
			if err := os.WriteFile(f, []byte(got.ConfigJSON), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(bin, "check-config", f).CombinedOutput(); err != nil {
				t.Errorf("check-config: %v\n%s", err, out)
			}

			if len(got.Wrappers) != 1 || got.Wrappers[0].Name != "pgarchive" {
				t.Fatalf("systemPackages %+v, want one wrapper named pgarchive", got.Wrappers)
			}
			// Root's settings are the units' with the secret files themselves.
			files := strings.NewReplacer("$CREDENTIALS_DIRECTORY/rclone.conf", rc, "$CREDENTIALS_DIRECTORY/recipients", "/run/secrets/rec",
				"$CREDENTIALS_DIRECTORY/identity", "/run/agenix/id", "$CREDENTIALS_DIRECTORY/passphrase", "/run/secrets/pass")
			root := m{}
			for k, v := range w.settings {
				if s, ok := v.(string); ok {
					v = files.Replace(s)
				}
				root[k] = v
			}
			checkRoot(t, bin, got, root, w.extra)
			if hasEnv := strings.Contains(got.Wrappers[0].Text, "source /run/secrets/pgarchive.env"); hasEnv != w.envLine {
				t.Errorf("wrapper sources the environment file: %v, want %v:\n%s", hasEnv, w.envLine, got.Wrappers[0].Text)
			}
		})
	}

	failures := []struct {
		name, message string
		in            map[string]any
	}{
		{"two key sources", "services.pgarchive: set exactly one key source, but recipients and identityFile are set together.",
			services(m{"databases": []string{"db1"}}, m{"recipients": []string{recipient}, "identityFile": "/run/agenix/id", "rcloneConfigFile": rc})},
		{"recipientsFile and passphraseFile", "but recipientsFile and passphraseFile are set together",
			services(m{"databases": []string{"db1"}}, m{"recipientsFile": "/run/r", "passphraseFile": "/run/p", "rcloneConfigFile": rc})},
		{"no key source", "services.pgarchive: no encryption key: set exactly one of recipients, recipientsFile, identityFile or passphraseFile",
			services(m{"databases": []string{"db1"}}, m{"rcloneConfigFile": rc})},
		{"no rclone.conf", "services.pgarchive.rcloneConfigFile is not set",
			services(m{"databases": []string{"db1"}}, m{"recipients": []string{recipient}})},
		{"database not dumped", "services.pgarchive.databases lists db3, which services.postgresqlBackup does not dump (it dumps: db1, db2)",
			services(m{"databases": []string{"db1", "db2"}}, m{"recipients": []string{recipient}, "rcloneConfigFile": rc, "databases": []string{"db3"}})},
		{"postgresqlBackup disabled", "set services.postgresqlBackup.enable = true",
			m{"services": m{"pgarchive": m{"enable": true, "recipients": []string{recipient}, "rcloneConfigFile": rc}}}},
	}
	for _, f := range failures {
		t.Run("rejects "+f.name, func(t *testing.T) {
			_, err := evalModule(t, lib, []any{f.in})
			if err == nil {
				t.Fatalf("evaluation succeeded, want failure %q", f.message)
			}
			msg := strings.Join(strings.Fields(err.Error()), " ")
			if !strings.Contains(msg, "Failed assertions:") || !strings.Contains(msg, f.message) {
				t.Fatalf("want failed assertion %q, got:\n%v", f.message, err)
			}
		})
	}
	store := "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-"
	for option, in := range map[string]m{
		"services.pgarchive.identityFile":     services(m{"databases": []string{"db1"}}, m{"identityFile": store + "id", "rcloneConfigFile": rc}),
		"services.pgarchive.rcloneConfigFile": services(m{"databases": []string{"db1"}}, m{"recipients": []string{recipient}, "rcloneConfigFile": store + "rclone.conf"}),
		"services.pgarchive.signingKeyFile": services(m{"databases": []string{"db1"}}, m{"recipients": []string{recipient}, "rcloneConfigFile": rc,
			"signingKeyFile": store + "key"}),
	} {
		t.Run("type refuses "+option+" in the store", func(t *testing.T) {
			_, err := evalModule(t, lib, []any{in})
			expectTypeError(t, err, option, store)
		})
	}
}

// A user's own additions to a unit merge with the module's as NixOS merges
// systemd options (a scalar joins a list), and the module may be imported
// twice (eval.nix imports nixosModules.default and .pgarchive in every case).
func TestUserServiceConfigMerges(t *testing.T) {
	lib := nixpkgsLib(t)
	res, err := evalModule(t, lib, []any{m{
		"services": m{"pgarchive": m{"rcloneConfigFile": "/run/secrets/rclone.conf",
			"prune": m{"enable": true, "keep": m{"last": 1}}, "metrics": m{"textfileDirectory": "/var/lib/metrics"}}},
		"systemd": m{"services": m{"pgarchive-prune": m{"serviceConfig": m{
			"LoadCredential": "extra:/run/secrets/extra", "ReadWritePaths": "/srv/also", "Environment": "HTTPS_PROXY=http://proxy:3128",
			"Nice": 5,
		}}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	u := res.Cases[0].Units["pgarchive-prune"]
	sameSet := func(k string, want ...string) {
		t.Helper()
		got := toStrings(u.ServiceConfig[k])
		sort.Strings(got)
		sort.Strings(want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v, want %v", k, u.ServiceConfig[k], want)
		}
	}
	sameSet("LoadCredential", "extra:/run/secrets/extra", "rclone.conf:/run/secrets/rclone.conf")
	sameSet("ReadWritePaths", "/srv/also", "/var/lib/metrics")
	if u.ServiceConfig["Environment"] != "HTTPS_PROXY=http://proxy:3128" || u.ServiceConfig["Nice"] != 5.0 {
		t.Errorf("scalars not kept: %v", u.ServiceConfig)
	}
}

func keys(u map[string]unit) []string {
	var k []string
	for n := range u {
		k = append(k, n)
	}
	return k
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func toAny(s []string) []any {
	if s == nil {
		return nil
	}
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// On a cross build the host's pgarchive cannot run where the system is
// built: the settings files are checked by the build platform's.
func TestCrossBuildChecksWithTheBuildPlatformsBinary(t *testing.T) {
	lib := nixpkgsLib(t)
	var got struct{ Host, Build, Command string }
	file := filepath.Join(harness.ModuleRoot(t), "tests", "nix", "stub", "cross.nix")
	if err := nixeval.EvalJSON(t, file, map[string]string{"libDir": lib}, &got); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got.Command, got.Build+`/bin/pgarchive check-config "$jsonPath"`) || strings.Contains(got.Command, got.Host) {
		t.Fatalf("cross build checks with %q, want the build platform's %s (not %s)", got.Command, got.Build, got.Host)
	}
}
