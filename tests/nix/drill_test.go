package nix_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
)

// The drill half of the module (services.pgarchive.drill), evaluated with the
// real lib.evalModules like TestModuleEvaluation: a verifier host that runs
// only the drill, the drill beside the archive units, its assertions, and the
// rendered units checked by systemd-analyze and run through root's wrapper.

const (
	drillRC       = "/run/secrets/pgarchive/rclone.conf"
	drillIdentity = "/run/agenix/pgarchive-identity"
	credIdentity  = "${CREDENTIALS_DIRECTORY}/identity"
)

// pgarchive sets services.pgarchive (and nothing else) in a case module.
func pgarchive(opts m) m { return m{"services": m{"pgarchive": opts}} }

func drillOn(opts m) m {
	opts["enable"] = true
	return opts
}

// hardening is what every rendering of pgarchive-drill must carry.
var hardening = m{
	"Type":                    "oneshot",
	"DynamicUser":             true,
	"PrivateTmp":              true,
	"ProtectSystem":           "strict",
	"ProtectHome":             true,
	"PrivateDevices":          true,
	"NoNewPrivileges":         true,
	"CapabilityBoundingSet":   "",
	"RestrictAddressFamilies": []any{"AF_UNIX", "AF_INET", "AF_INET6"},
	"SystemCallFilter":        []any{"@system-service", "~@privileged"},
}

func TestDrillModule(t *testing.T) {
	lib := nixpkgsLib(t)
	bin := harness.BuildBinary(t, "./cmd/pgarchive")

	checks := m{
		"db1": []m{{"query": "select count(*) from registrations", "expect": ">= 1000"}},
		"*":   []m{{"query": "select count(*) from pg_tables where schemaname = 'public'", "expect": "> 0"}},
	}
	type want struct {
		extra      string // extraArgs, rendered before the command
		pg         string // store name suffix of the drill's PostgreSQL
		creds      []string
		envFile    string
		onCalendar any
		drillJSON  m      // PGBIN and CHECKS stand for store paths
		checks     m      // nil: no checks file
		backup     string // archive unit that must keep its ExecStartPost, or ""
		rootJSON   m      // root's wrapper's settings
	}
	cases := []struct {
		name string
		in   m
		want want
	}{
		{"verifier host: drill only, no postgresqlBackup, no PostgreSQL",
			pgarchive(m{"rcloneConfigFile": drillRC, "drill": drillOn(m{
				"identityFile": drillIdentity, "databases": []string{"db1", "db2"}, "checks": checks})}),
			want{
				pg:         "-postgresql-17.7",
				creds:      []string{"rclone.conf:" + drillRC, "identity:" + drillIdentity},
				onCalendar: "*-*-* 06:00:00",
				drillJSON: m{"remote": "archive-target-database:", "rclone-config": "$CREDENTIALS_DIRECTORY/rclone.conf",
					"identity-file": "$CREDENTIALS_DIRECTORY/identity", "pg-bin": "PGBIN",
					"drill": m{"database": []any{"db1", "db2"}, "max-age": "26h", "checks-file": "CHECKS"}},
				checks: checks,
				// A verifier host: root reads the archives as the drill does,
				// with its key and PostgreSQL.
				rootJSON: m{"remote": "archive-target-database:", "rclone-config": drillRC, "identity-file": drillIdentity, "pg-bin": "PGBIN"},
			}},
		{"archive and drill on the database host, public keys",
			m{"services": m{
				"postgresql":       m{"enable": true},
				"postgresqlBackup": m{"enable": true, "databases": []string{"db1"}},
				"pgarchive": m{
					"enable": true, "recipients": []string{recipient}, "rcloneConfigFile": drillRC,
					"prefix": "hosts/pg1", "remote": "offsite:", "extraArgs": []string{"--verbose"},
					"environmentFile": "/run/secrets/pgarchive.env",
					"drill": drillOn(m{
						"identityFile": drillIdentity, "rcloneConfigFile": "/run/secrets/pgarchive/read-only.conf",
						"maxAge": "192h", "startAt": []string{"Sun *-*-* 04:00:00", "Wed *-*-* 04:00:00"},
					}),
				},
			}},
			want{
				extra:      " --verbose",
				pg:         "-postgresql-16.11",
				creds:      []string{"rclone.conf:/run/secrets/pgarchive/read-only.conf", "identity:" + drillIdentity},
				envFile:    "/run/secrets/pgarchive.env",
				onCalendar: []any{"Sun *-*-* 04:00:00", "Wed *-*-* 04:00:00"},
				drillJSON: m{"remote": "offsite:", "prefix": "hosts/pg1", "rclone-config": "$CREDENTIALS_DIRECTORY/rclone.conf",
					"identity-file": "$CREDENTIALS_DIRECTORY/identity", "pg-bin": "PGBIN", "drill": m{"max-age": "192h"}},
				backup: "postgresqlBackup-db1",
				// The archive settings with the files themselves; the
				// recipients do not decrypt, so the drill's identity joins.
				rootJSON: m{"remote": "offsite:", "prefix": "hosts/pg1", "rclone-config": drillRC, "recipients": []any{recipient},
					"identity-file": drillIdentity, "pg-bin": "PGBIN", "dump-dir": "/var/backup/postgresql", "dump-compression": "gzip",
					"state-dir": "/var/lib/pgarchive", "backlog-max-size": "10Gi"},
			}},
		{"archive and drill with a passphrase",
			m{"services": m{
				"postgresqlBackup": m{"enable": true},
				"pgarchive": m{
					"enable": true, "passphraseFile": "/run/secrets/archive-pass", "rcloneConfigFile": drillRC,
					"drill": drillOn(m{"passphraseFile": "/run/secrets/drill-pass", "checks": m{"*": checks["*"]}}),
				},
			}},
			want{
				pg:         "-postgresql-17.7",
				creds:      []string{"rclone.conf:" + drillRC, "passphrase:/run/secrets/drill-pass"},
				onCalendar: "*-*-* 06:00:00",
				drillJSON: m{"remote": "archive-target-database:", "rclone-config": "$CREDENTIALS_DIRECTORY/rclone.conf",
					"passphrase-file": "$CREDENTIALS_DIRECTORY/passphrase", "pg-bin": "PGBIN",
					"drill": m{"max-age": "26h", "checks-file": "CHECKS"}},
				checks: m{"*": checks["*"]},
				backup: "postgresqlBackup",
				// The archive's own passphrase decrypts: no default from the drill.
				rootJSON: m{"remote": "archive-target-database:", "rclone-config": drillRC, "passphrase-file": "/run/secrets/archive-pass",
					"pg-bin": "PGBIN", "dump-dir": "/var/backup/postgresql", "dump-compression": "gzip",
					"state-dir": "/var/lib/pgarchive", "backlog-max-size": "10Gi"},
			}},
	}
	var inputs []any
	for _, c := range cases {
		inputs = append(inputs, c.in)
	}
	// Two hosts without the drill, for what it must not add.
	inputs = append(inputs,
		m{"services": m{"postgresql": m{"enable": true}, "postgresqlBackup": m{"enable": true, "databases": []string{"db1"}},
			"pgarchive": m{"enable": true, "recipients": []string{recipient}, "rcloneConfigFile": drillRC}}},
		m{"services": m{"pgarchive": m{"rcloneConfigFile": drillRC, "drill": m{"identityFile": drillIdentity}}}},
	)
	res, err := evalModule(t, lib, inputs)
	if err != nil {
		t.Fatal(err)
	}

	for i, c := range cases {
		got, w := res.Cases[i], c.want
		t.Run(c.name, func(t *testing.T) {
			u, ok := got.Units["pgarchive-drill"]
			if !ok {
				t.Fatalf("no pgarchive-drill among %v", keys(got.Units))
			}
			if !strings.HasSuffix(got.Drill.PostgresqlPath, w.pg) {
				t.Errorf("drill PostgreSQL %s, want ...%s", got.Drill.PostgresqlPath, w.pg)
			}
			wantExec := got.PackagePath + "/bin/pgarchive --config " + got.Drill.ConfigPath + w.extra + " drill"
			paths := map[string]any{"PGBIN": got.Drill.PostgresqlPath + "/bin"}
			if w.checks != nil {
				if got.Drill.ChecksPath == nil || got.Drill.ChecksJSON == nil {
					t.Fatalf("checks %v set but no checks file", w.checks)
				}
				paths["CHECKS"] = *got.Drill.ChecksPath
				var gotChecks, wantChecks any
				if err := json.Unmarshal([]byte(*got.Drill.ChecksJSON), &gotChecks); err != nil {
					t.Fatal(err)
				}
				js, _ := json.Marshal(w.checks)
				json.Unmarshal(js, &wantChecks)
				if !reflect.DeepEqual(gotChecks, wantChecks) {
					t.Errorf("checks file %s\nwant %s", *got.Drill.ChecksJSON, js)
				}
			} else if got.Drill.ChecksPath != nil {
				t.Errorf("no checks, yet a checks file %s", *got.Drill.ChecksPath)
			}
			if exec := u.ServiceConfig["ExecStart"]; exec != wantExec {
				t.Errorf("ExecStart\n got %v\nwant %s", exec, wantExec)
			}
			if lc := u.ServiceConfig["LoadCredential"]; !reflect.DeepEqual(lc, toAny(w.creds)) {
				t.Errorf("LoadCredential = %v, want %v", lc, w.creds)
			}
			if ef := u.ServiceConfig["EnvironmentFile"]; (w.envFile == "" && ef != nil) || (w.envFile != "" && !reflect.DeepEqual(ef, []any{w.envFile})) {
				t.Errorf("EnvironmentFile = %v, want %q", ef, w.envFile)
			}
			for k, v := range hardening {
				if !reflect.DeepEqual(u.ServiceConfig[k], v) {
					t.Errorf("%s = %#v, want %#v", k, u.ServiceConfig[k], v)
				}
			}
			for _, k := range []string{"User", "MemoryDenyWriteExecute", "PrivateNetwork"} {
				if v, ok := u.ServiceConfig[k]; ok {
					t.Errorf("%s = %v: the drill runs initdb (not as a fixed user), PostgreSQL's JIT and rclone", k, v)
				}
			}
			if !contains(u.Wants, "network-online.target") || !contains(u.After, "network-online.target") {
				t.Errorf("wants %v after %v, want network-online.target in both", u.Wants, u.After)
			}

			tm, ok := got.Timers["pgarchive-drill"]
			if !ok {
				t.Fatalf("no timer pgarchive-drill among %v", got.Timers)
			}
			if !reflect.DeepEqual(tm.TimerConfig["OnCalendar"], w.onCalendar) || tm.TimerConfig["Persistent"] != true ||
				tm.TimerConfig["RandomizedDelaySec"] == nil || !reflect.DeepEqual(tm.WantedBy, []string{"timers.target"}) {
				t.Errorf("timer %+v, want OnCalendar %v, Persistent, a random delay, wanted by timers.target", tm, w.onCalendar)
			}

			// The drill's settings: where the archives are, its own key by
			// credential path (never the archive units' keys) and its section.
			checkSettings(t, bin, "drill", settingsFile{got.Drill.ConfigPath, got.Drill.ConfigJSON, got.Drill.ConfigBuild}, got.PackagePath,
				withPaths(w.drillJSON, paths).(m))

			// The archive units are there exactly when the archive half is.
			for name, bu := range got.Units {
				if name == "pgarchive-drill" {
					continue
				}
				if name != w.backup {
					t.Errorf("unexpected unit %s", name)
				}
				if post, _ := bu.ServiceConfig["ExecStartPost"].([]any); len(post) != 1 || !strings.Contains(fmt.Sprint(post[0]), " --config "+got.ConfigPath+" ") {
					t.Errorf("%s ExecStartPost = %v, want the archive line with %s", name, bu.ServiceConfig["ExecStartPost"], got.ConfigPath)
				}
			}
			if _, ok := got.Units[w.backup]; w.backup != "" && !ok {
				t.Errorf("no %s among %v", w.backup, keys(got.Units))
			}
			checkRoot(t, bin, got, withPaths(w.rootJSON, paths).(m), w.extra)

			verifyUnits(t, bin, u, tm)
		})
	}

	t.Run("archive host without drill", func(t *testing.T) {
		got := res.Cases[len(cases)]
		if _, ok := got.Units["pgarchive-drill"]; ok || len(got.Timers) != 0 {
			t.Errorf("drill unit or timers without drill.enable: %v %v", keys(got.Units), got.Timers)
		}
		// restore --into needs psql: the local server's; no default key.
		var root m
		json.Unmarshal([]byte(got.Root.JSON), &root)
		if pg, _ := root["pg-bin"].(string); !strings.HasSuffix(pg, "-postgresql-16.11/bin") || root["identity-file"] != nil {
			t.Errorf("root settings %s: want the server's psql and no drill key", got.Root.JSON)
		}
	})
	t.Run("nothing enabled", func(t *testing.T) {
		got := res.Cases[len(cases)+1]
		if len(got.Units) != 0 || len(got.Timers) != 0 || len(got.Wrappers) != 0 {
			t.Errorf("units %v, timers %v, wrappers %v with nothing enabled", keys(got.Units), got.Timers, got.Wrappers)
		}
	})

	store := "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-"
	failures := []struct {
		name, message string
		in            m
	}{
		{"no key", "services.pgarchive.drill: no decryption key: set exactly one of drill.identityFile or drill.passphraseFile.",
			pgarchive(m{"rcloneConfigFile": drillRC, "drill": drillOn(m{})})},
		{"identity and passphrase", "services.pgarchive.drill: set exactly one of drill.identityFile or drill.passphraseFile, not both.",
			pgarchive(m{"rcloneConfigFile": drillRC, "drill": drillOn(m{"identityFile": drillIdentity, "passphraseFile": "/run/secrets/pass"})})},
		{"no rclone.conf", "services.pgarchive.drill.rcloneConfigFile is not set",
			pgarchive(m{"drill": drillOn(m{"identityFile": drillIdentity})})},
		{"passphrase drill of public-key archives", "the archives are encrypted to public keys (recipients), so the drill needs drill.identityFile",
			m{"services": m{"postgresqlBackup": m{"enable": true}, "pgarchive": m{"enable": true, "recipients": []string{recipient}, "rcloneConfigFile": drillRC,
				"drill": drillOn(m{"passphraseFile": "/run/secrets/pass"})}}}},
		{"identity drill of passphrase archives", "the archives are encrypted with services.pgarchive.passphraseFile, so the drill needs drill.passphraseFile",
			m{"services": m{"postgresqlBackup": m{"enable": true}, "pgarchive": m{"enable": true, "passphraseFile": "/run/secrets/pass", "rcloneConfigFile": drillRC,
				"drill": drillOn(m{"identityFile": drillIdentity})}}}},
		{"checks for a database not drilled", "services.pgarchive.drill.checks has checks for db3, which drill.databases (db1) leaves out",
			pgarchive(m{"rcloneConfigFile": drillRC, "drill": drillOn(m{"identityFile": drillIdentity, "databases": []string{"db1"},
				"checks": m{"db3": checks["db1"], "*": checks["*"]}})})},
	}
	// Secrets in the world-readable store: refused by the options' type.
	for _, f := range []struct {
		option, value string
		in            m
	}{
		{"services.pgarchive.drill.identityFile", store + "id", pgarchive(m{"rcloneConfigFile": drillRC, "drill": drillOn(m{"identityFile": store + "id"})})},
		{"services.pgarchive.drill.passphraseFile", store + "pass", pgarchive(m{"rcloneConfigFile": drillRC, "drill": drillOn(m{"passphraseFile": store + "pass"})})},
		{"services.pgarchive.rcloneConfigFile", store + "rclone.conf", pgarchive(m{"rcloneConfigFile": store + "rclone.conf", "drill": drillOn(m{"identityFile": drillIdentity})})},
		{"services.pgarchive.drill.rcloneConfigFile", store + "ro.conf", pgarchive(m{"drill": drillOn(m{"identityFile": drillIdentity, "rcloneConfigFile": store + "ro.conf"})})},
		{"services.pgarchive.environmentFile", store + "env", pgarchive(m{"rcloneConfigFile": drillRC, "environmentFile": store + "env", "drill": drillOn(m{"identityFile": drillIdentity})})},
	} {
		t.Run("type refuses "+f.option+" in the store", func(t *testing.T) {
			_, err := evalModule(t, lib, []any{f.in})
			expectTypeError(t, err, f.option, f.value)
		})
	}
	// Durations and names are the binary's to parse: the build refuses them.
	t.Run("build refuses a maxAge in days", func(t *testing.T) {
		res, err := evalModule(t, lib, []any{pgarchive(m{"rcloneConfigFile": drillRC, "drill": drillOn(m{"identityFile": drillIdentity, "maxAge": "8d"})})})
		if err != nil {
			t.Fatal(err)
		}
		d := res.Cases[0].Drill
		expectBuildRefusal(t, bin, settingsFile{d.ConfigPath, d.ConfigJSON, d.ConfigBuild}, `drill: max-age "8d"`)
	})
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
			// A verifier host must not trip the archive half's assertions.
			if !strings.Contains(f.name, "archives") && strings.Contains(msg, "postgresqlBackup") {
				t.Errorf("the drill alone tripped an archive assertion:\n%s", msg)
			}
		})
	}
}

// checkRoot checks root's wrapper: it only sources the environment file
// and runs the binary with its own settings file (no argument parsing of its
// own), and those settings are want and pass check-config.
func checkRoot(t *testing.T, bin string, got evalCase, want m, extra string) {
	t.Helper()
	if len(got.Wrappers) != 1 || got.Wrappers[0].Name != "pgarchive" {
		t.Fatalf("systemPackages %+v, want one wrapper named pgarchive", got.Wrappers)
	}
	text := got.Wrappers[0].Text
	line := "exec " + got.PackagePath + "/bin/pgarchive --config " + got.Root.Path + extra + ` "$@"`
	if !strings.Contains(strings.Join(strings.Fields(text), " "), line) {
		t.Errorf("wrapper lacks %q:\n%s", line, text)
	}
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "set ") && !strings.HasPrefix(l, "source ") && !strings.HasPrefix(l, "exec ") {
			t.Errorf("wrapper does more than source and exec: %q", l)
		}
	}
	checkSettings(t, bin, "root", got.Root, got.PackagePath, want)
}

// withPaths replaces placeholder strings (PGBIN, CHECKS) in v.
func withPaths(v any, paths map[string]any) any {
	switch x := v.(type) {
	case m:
		out := m{}
		for k, e := range x {
			out[k] = withPaths(e, paths)
		}
		return out
	case string:
		if p, ok := paths[x]; ok {
			return p
		}
	}
	return v
}

// verifyUnits checks the drill's service and timer with systemd-analyze,
// the binary standing in for the store path so that systemd can check the
// command.
func verifyUnits(t *testing.T, bin string, u unit, tm timer) {
	t.Helper()
	exec0, _ := u.ServiceConfig["ExecStart"].(string)
	prog, _, _ := strings.Cut(exec0, " ")
	if !strings.HasSuffix(prog, "/bin/pgarchive") {
		t.Fatalf("ExecStart does not start with pgarchive: %s", exec0)
	}
	analyzeVerify(t, map[string]string{
		"pgarchive-drill.service": serviceText(withProgram(u, strings.TrimSuffix(prog, "/bin/pgarchive"), bin)),
		"pgarchive-drill.timer":   timerText(tm),
	})
}
