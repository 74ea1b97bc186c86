package nix_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
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
		extra      string // extraArgs, rendered before --pg-bin
		execArgs   string // ExecStart after the --pg-bin directory
		pg         string // store name suffix of the drill's PostgreSQL
		creds      []string
		envFile    string
		onCalendar any
		drillJSON  m
		checks     m      // nil: no --checks-file
		backup     string // archive unit that must keep its ExecStartPost, or ""
		rootConfig string // "drill" or "archive": the settings file of root's wrapper
		rootFlags  string // wrapper's flags after --config FILE
		rootPgBin  string // store name suffix of the wrapper's default PGARCHIVE_PG_BIN, "" for none
		rootKey    string // VAR=path the wrapper defaults to, "" for none
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
				execArgs:   "drill --database db1 --database db2 --identity-file " + credIdentity + " --max-age 26h --checks-file CHECKS",
				pg:         "-postgresql-17.7",
				creds:      []string{"rclone.conf:" + drillRC, "identity:" + drillIdentity},
				onCalendar: "*-*-* 06:00:00",
				drillJSON:  m{"remote": "archive-target-database:", "rclone-config": "$CREDENTIALS_DIRECTORY/rclone.conf"},
				checks:     checks,
				rootConfig: "drill", rootFlags: "--rclone-config " + drillRC + ` "$@"`,
				rootPgBin: "-postgresql-17.7", rootKey: "PGARCHIVE_IDENTITY_FILE=" + drillIdentity,
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
				execArgs:   "drill --identity-file " + credIdentity + " --max-age 192h",
				pg:         "-postgresql-16.11",
				creds:      []string{"rclone.conf:/run/secrets/pgarchive/read-only.conf", "identity:" + drillIdentity},
				envFile:    "/run/secrets/pgarchive.env",
				onCalendar: []any{"Sun *-*-* 04:00:00", "Wed *-*-* 04:00:00"},
				drillJSON:  m{"remote": "offsite:", "prefix": "hosts/pg1", "rclone-config": "$CREDENTIALS_DIRECTORY/rclone.conf"},
				backup:     "postgresqlBackup-db1",
				rootConfig: "archive", rootFlags: "--rclone-config " + drillRC + ` --verbose "$@"`,
				rootPgBin: "-postgresql-16.11", rootKey: "PGARCHIVE_IDENTITY_FILE=" + drillIdentity,
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
				execArgs:   "drill --passphrase-file ${CREDENTIALS_DIRECTORY}/passphrase --max-age 26h --checks-file CHECKS",
				pg:         "-postgresql-17.7",
				creds:      []string{"rclone.conf:" + drillRC, "passphrase:/run/secrets/drill-pass"},
				onCalendar: "*-*-* 06:00:00",
				drillJSON:  m{"remote": "archive-target-database:", "rclone-config": "$CREDENTIALS_DIRECTORY/rclone.conf"},
				checks:     m{"*": checks["*"]},
				backup:     "postgresqlBackup",
				// The archive's own passphrase decrypts: no default from the drill.
				rootConfig: "archive", rootFlags: "--rclone-config " + drillRC + " --passphrase-file /run/secrets/archive-pass \"$@\"",
				rootPgBin: "-postgresql-17.7",
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
			wantExec := got.PackagePath + "/bin/pgarchive --config " + got.Drill.ConfigPath + w.extra + " --pg-bin " + got.Drill.PostgresqlPath + "/bin " + w.execArgs
			if w.checks != nil {
				if got.Drill.ChecksPath == nil || got.Drill.ChecksJSON == nil {
					t.Fatalf("checks %v set but no checks file", w.checks)
				}
				wantExec = strings.Replace(wantExec, "CHECKS", *got.Drill.ChecksPath, 1)
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

			// The drill's settings: where the archives are, never a key.
			var s m
			if err := json.Unmarshal([]byte(got.Drill.ConfigJSON), &s); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s, w.drillJSON) {
				t.Errorf("drill settings %s\nwant %v", got.Drill.ConfigJSON, w.drillJSON)
			}
			if !strings.Contains(got.Drill.ConfigBuild, got.PackagePath+`/bin/pgarchive check-config "$jsonPath"`) {
				t.Errorf("the drill's settings file is not validated at build time: %q", got.Drill.ConfigBuild)
			}
			f := filepath.Join(t.TempDir(), "pgarchive-read.json")
			os.WriteFile(f, []byte(got.Drill.ConfigJSON), 0o644)
			if out, err := exec.Command(bin, "check-config", f).CombinedOutput(); err != nil {
				t.Errorf("check-config: %v\n%s", err, out)
			}

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
			if w.rootConfig == "drill" && got.ConfigPath != got.Drill.ConfigPath {
				t.Errorf("root's settings file %s, want the drill's %s on a verifier host", got.ConfigPath, got.Drill.ConfigPath)
			}
			if w.rootConfig == "archive" && got.ConfigPath == got.Drill.ConfigPath {
				t.Errorf("root's settings file is the drill's on an archive host")
			}

			if len(got.Wrappers) != 1 || got.Wrappers[0].Name != "pgarchive" {
				t.Fatalf("systemPackages %+v, want one wrapper named pgarchive", got.Wrappers)
			}
			text := got.Wrappers[0].Text
			if line := "exec " + got.PackagePath + "/bin/pgarchive --config " + got.ConfigPath + " " + w.rootFlags; !strings.Contains(text, line) {
				t.Errorf("wrapper lacks %q:\n%s", line, text)
			}
			checkWrapper(t, text, got.PackagePath, w.rootPgBin, w.rootKey)

			verifyUnits(t, bin, u, tm)
		})
	}

	t.Run("archive host without drill", func(t *testing.T) {
		got := res.Cases[len(cases)]
		if _, ok := got.Units["pgarchive-drill"]; ok || len(got.Timers) != 0 {
			t.Errorf("drill unit or timers without drill.enable: %v %v", keys(got.Units), got.Timers)
		}
		// restore --into needs psql: the local server's.
		checkWrapper(t, got.Wrappers[0].Text, got.PackagePath, "-postgresql-16.11", "")
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
		{"identity in the store", "services.pgarchive.drill.identityFile is " + store + "id, inside the world-readable Nix store",
			pgarchive(m{"rcloneConfigFile": drillRC, "drill": drillOn(m{"identityFile": store + "id"})})},
		{"passphrase in the store", "services.pgarchive.drill.passphraseFile is " + store + "pass, inside the world-readable Nix store",
			pgarchive(m{"rcloneConfigFile": drillRC, "drill": drillOn(m{"passphraseFile": store + "pass"})})},
		{"inherited rclone.conf in the store", "services.pgarchive.drill.rcloneConfigFile is " + store + "rclone.conf, inside the world-readable Nix store",
			pgarchive(m{"rcloneConfigFile": store + "rclone.conf", "drill": drillOn(m{"identityFile": drillIdentity})})},
		{"environment file in the store", "services.pgarchive.environmentFile is " + store + "env, inside the world-readable Nix store",
			pgarchive(m{"rcloneConfigFile": drillRC, "environmentFile": store + "env", "drill": drillOn(m{"identityFile": drillIdentity})})},
		{"no rclone.conf", "services.pgarchive.drill.rcloneConfigFile is not set",
			pgarchive(m{"drill": drillOn(m{"identityFile": drillIdentity})})},
		{"passphrase drill of public-key archives", "the archives are encrypted to public keys (recipients), so the drill needs drill.identityFile",
			m{"services": m{"postgresqlBackup": m{"enable": true}, "pgarchive": m{"enable": true, "recipients": []string{recipient}, "rcloneConfigFile": drillRC,
				"drill": drillOn(m{"passphraseFile": "/run/secrets/pass"})}}}},
		{"identity drill of passphrase archives", "the archives are encrypted with services.pgarchive.passphraseFile, so the drill needs drill.passphraseFile",
			m{"services": m{"postgresqlBackup": m{"enable": true}, "pgarchive": m{"enable": true, "passphraseFile": "/run/secrets/pass", "rcloneConfigFile": drillRC,
				"drill": drillOn(m{"identityFile": drillIdentity})}}}},
		{"a maxAge in days", `services.pgarchive.drill.maxAge = "8d" is not a duration pgarchive accepts`,
			pgarchive(m{"rcloneConfigFile": drillRC, "drill": drillOn(m{"identityFile": drillIdentity, "maxAge": "8d"})})},
		{"checks for a database not drilled", "services.pgarchive.drill.checks has checks for db3, which drill.databases (db1) leaves out",
			pgarchive(m{"rcloneConfigFile": drillRC, "drill": drillOn(m{"identityFile": drillIdentity, "databases": []string{"db1"},
				"checks": m{"db3": checks["db1"], "*": checks["*"]}})})},
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
			// A verifier host must not trip the archive half's assertions.
			if !strings.Contains(f.name, "archives") && strings.Contains(msg, "postgresqlBackup") {
				t.Errorf("the drill alone tripped an archive assertion:\n%s", msg)
			}
		})
	}
}

// checkWrapper runs root's wrapper with the pgarchive it execs replaced by a
// script that prints what it got, for the defaults it must and must not set.
func checkWrapper(t *testing.T, text, pkgPath, pgBinSuffix, key string) {
	t.Helper()
	dir := t.TempDir()
	fake := filepath.Join(dir, "pgarchive")
	os.WriteFile(fake, []byte("#!/bin/sh\necho \"PG_BIN=${PGARCHIVE_PG_BIN-} IDENTITY=${PGARCHIVE_IDENTITY_FILE-} PASSPHRASE=${PGARCHIVE_PASSPHRASE_FILE-} ARGS=$*\"\n"), 0o755)
	script := filepath.Join(dir, "wrapper")
	// The environment file exists only on the host.
	text = regexp.MustCompile(`(?m)^source .*$`).ReplaceAllString(text, "source /dev/null")
	os.WriteFile(script, []byte(strings.ReplaceAll(text, pkgPath+"/bin/pgarchive", fake)), 0o755)
	run := func(env []string, args ...string) string {
		cmd := exec.Command("bash", append([]string{script}, args...)...)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("wrapper %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	field := func(out, name string) string {
		m := regexp.MustCompile(name + `=(\S*)`).FindStringSubmatch(out)
		if m == nil {
			return ""
		}
		return m[1]
	}

	out := run(nil, "list", "--database", "db1")
	if pg := field(out, "PG_BIN"); (pgBinSuffix == "" && pg != "") || (pgBinSuffix != "" && !strings.HasSuffix(pg, pgBinSuffix+"/bin")) {
		t.Errorf("PGARCHIVE_PG_BIN = %q, want ...%s/bin (empty: none)", pg, pgBinSuffix)
	}
	if !strings.HasSuffix(out, "list --database db1") {
		t.Errorf("arguments not passed on: %s", out)
	}
	var keyVar, keyPath string
	if key != "" {
		keyVar, keyPath, _ = strings.Cut(key, "=")
	}
	gotKey := func(out string) string {
		for _, v := range []string{"IDENTITY", "PASSPHRASE"} {
			if p := field(out, v); p != "" {
				return "PGARCHIVE_" + v + "_FILE=" + p
			}
		}
		return ""
	}
	if g := gotKey(out); g != key {
		t.Errorf("default key %q, want %q", g, key)
	}
	if out := run([]string{"PGARCHIVE_PG_BIN=/opt/pg/bin"}, "list"); field(out, "PG_BIN") != "/opt/pg/bin" {
		t.Errorf("the wrapper overrides the caller's PGARCHIVE_PG_BIN: %s", out)
	}
	if keyVar == "" {
		return
	}
	// The caller's own key, by flag or environment, is never joined by the default.
	for _, args := range [][]string{
		{"verify", "--deep", "--identity-file", "/root/other"},
		{"restore", "--database", "db1", "--passphrase-file=/root/pass"},
		{"verify", "-i", "/root/other"},
	} {
		if out := run(nil, args...); gotKey(out) != "" {
			t.Errorf("wrapper %v still sets a default key: %s", args, out)
		}
	}
	other := "PGARCHIVE_PASSPHRASE_FILE"
	if keyVar == other {
		other = "PGARCHIVE_IDENTITY_FILE"
	}
	if out := run([]string{other + "=/root/mine"}, "verify"); strings.Contains(out, keyPath) {
		t.Errorf("wrapper adds %s to the caller's %s: %s", keyPath, other, out)
	}
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
