package nix_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
)

// The scheduled status check (status.nix), evaluated with the real
// lib.evalModules: its unit on the full host (metrics, hooks), on a verifier
// that drills, on a host that runs nothing else, its assertions, and
// systemd-analyze on each. realbin_test.go runs its command, systemd_test.go
// boots it.

const (
	statusRC  = "/run/secrets/pgarchive/rclone-ro.conf"
	statusEnv = "/run/secrets/pgarchive/env"
)

func TestStatusModule(t *testing.T) {
	lib := nixpkgsLib(t)
	bin := harness.BuildBinary(t, "./cmd/pgarchive")

	res, err := evalModule(t, lib, []any{
		fullHost(),
		// A verifier: the drill's rclone.conf is the only one there is.
		pgarchive(m{"prefix": lifecycleHost,
			"drill":  drillOn(m{"identityFile": drillIdentity, "rcloneConfigFile": "/run/secrets/ro.conf"}),
			"status": m{"enable": true}}),
		// Only the check, with its own read-only rclone.conf, failure notices
		// and the settings every unit shares.
		pgarchive(m{"rcloneConfigFile": drillRC, "extraArgs": []string{"--verbose"}, "environmentFile": statusEnv,
			"status": m{"enable": true, "rcloneConfigFile": statusRC, "startAt": "*:0/15", "maxAge": "0", "databases": []string{"db.1"}},
			"notify": m{"onFailure": true, "webhookUrlFile": hookFile}}),
	})
	if err != nil {
		t.Fatal(err)
	}
	full, verifier, only := res.Cases[0], res.Cases[1], res.Cases[2]

	t.Run("full host", func(t *testing.T) {
		got := full
		u, ok := got.Units["pgarchive-status"]
		if !ok {
			t.Fatalf("no pgarchive-status among %v", keys(got.Units))
		}
		expectConfig(t, "pgarchive-status", u, sandbox(), m{
			"Type":      "oneshot",
			"ExecStart": got.PackagePath + "/bin/pgarchive --config " + got.Status.Path + " status",
			// The archive host's rclone.conf, not prune's.
			"LoadCredential": []any{"rclone.conf:" + drillRC},
			// Writes pgarchive-status.prom as the other writers do.
			"SupplementaryGroups": []any{"pgarchive"}, "ReadWritePaths": []any{metricsDir},
		})
		expectAbsent(t, "pgarchive-status", u, "EnvironmentFile", "User")
		expectHooks(t, "pgarchive-status", u, true, true)
		expectOnline(t, "pgarchive-status", u)
		expectTimer(t, got, "pgarchive-status", "hourly")
		if d := got.Timers["pgarchive-status"].TimerConfig["RandomizedDelaySec"]; d != "5min" {
			t.Errorf("pgarchive-status timer RandomizedDelaySec = %v, want 5min", d)
		}
		// No key, no backlog: the settings of the read side plus metrics,
		// and its own section (databases, maxAge), checked by check-config.
		checkSettings(t, bin, "status", got.Status, got.PackagePath, m{
			"remote": "archive-target-database:", "prefix": lifecycleHost, "rclone-config": "$CREDENTIALS_DIRECTORY/rclone.conf", "metrics-dir": metricsDir,
			"status": m{"database": []any{"db1", "db2"}, "max-age": "30h"},
		})
		verifyAll(t, bin, got)
	})

	t.Run("verifier that drills", func(t *testing.T) {
		got := verifier
		u := got.Units["pgarchive-status"]
		expectConfig(t, "pgarchive-status", u, sandbox(), m{
			"ExecStart":      got.PackagePath + "/bin/pgarchive --config " + got.Status.Path + " status",
			"LoadCredential": []any{"rclone.conf:/run/secrets/ro.conf"},
		})
		expectAbsent(t, "pgarchive-status", u, "SupplementaryGroups", "ReadWritePaths", "EnvironmentFile")
		expectHooks(t, "pgarchive-status", u, false, false)
		expectTimer(t, got, "pgarchive-status", "hourly")
		checkSettings(t, bin, "status", got.Status, got.PackagePath, m{
			"remote": "archive-target-database:", "prefix": lifecycleHost, "rclone-config": "$CREDENTIALS_DIRECTORY/rclone.conf",
			"status": m{"max-age": "26h"},
		})
		if len(got.Tmpfiles) != 0 || len(got.Groups) != 0 {
			t.Errorf("tmpfiles %v, groups %v on a verifier without metrics", got.Tmpfiles, got.Groups)
		}
		// Root's wrapper still reads as the drill does, and checks what the
		// unit checks.
		checkRoot(t, bin, got, m{"remote": "archive-target-database:", "prefix": lifecycleHost, "rclone-config": "/run/secrets/ro.conf",
			"identity-file": drillIdentity, "pg-bin": got.Drill.PostgresqlPath + "/bin", "status": m{"max-age": "26h"}}, "")
		verifyAll(t, bin, got)
	})

	t.Run("status-only host", func(t *testing.T) {
		got := only
		exe := got.PackagePath + "/bin/pgarchive"
		if len(got.Units) != 2 || len(got.Timers) != 1 {
			t.Errorf("units %v, timers %v: want pgarchive-status, its failure hook and its timer", keys(got.Units), got.Timers)
		}
		u := got.Units["pgarchive-status"]
		expectConfig(t, "pgarchive-status", u, sandbox(), m{
			"ExecStart":       exe + " --config " + got.Status.Path + " --verbose status",
			"LoadCredential":  []any{"rclone.conf:" + statusRC},
			"EnvironmentFile": []any{statusEnv},
		})
		expectAbsent(t, "pgarchive-status", u, "SupplementaryGroups", "ReadWritePaths")
		expectHooks(t, "pgarchive-status", u, true, false)
		expectTimer(t, got, "pgarchive-status", "*:0/15")
		expectConfig(t, "pgarchive-notify-failure@", got.Units["pgarchive-notify-failure@"], m{
			"ExecStart": exe + " --verbose notify --event failure --webhook-url-file " + credWebhook + " --format slack --journal-lines 20 --unit %i",
		})

		// Root gets the wrapper, reading with the check's settings and
		// rclone.conf.
		checkSettings(t, bin, "status", got.Status, got.PackagePath, m{
			"remote": "archive-target-database:", "rclone-config": "$CREDENTIALS_DIRECTORY/rclone.conf",
			"status": m{"database": []any{"db.1"}, "max-age": "0"},
		})
		checkRoot(t, bin, got, m{"remote": "archive-target-database:", "rclone-config": statusRC,
			"status": m{"database": []any{"db.1"}, "max-age": "0"}}, " --verbose")
		if !strings.Contains(got.Wrappers[0].Text, "source "+statusEnv) {
			t.Errorf("the wrapper does not source %s:\n%s", statusEnv, got.Wrappers[0].Text)
		}
		verifyAll(t, bin, got)
	})

	t.Run("only where enabled", func(t *testing.T) {
		res, err := evalModule(t, lib, []any{
			pgarchive(m{"rcloneConfigFile": drillRC, "status": m{"maxAge": "26h"}}),
			m{"services": m{"postgresqlBackup": m{"enable": true, "databases": []string{"db1"}},
				"pgarchive": m{"enable": true, "recipients": []string{recipient}, "rcloneConfigFile": drillRC}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range res.Cases {
			if _, ok := c.Units["pgarchive-status"]; ok {
				t.Errorf("case %d: pgarchive-status without status.enable", i)
			}
			if _, ok := c.Timers["pgarchive-status"]; ok {
				t.Errorf("case %d: a status timer without status.enable", i)
			}
		}
		if len(res.Cases[0].Wrappers) != 0 {
			t.Errorf("a host that runs nothing got root's wrapper")
		}
	})

	store := "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-"
	status := func(s m, more m) m {
		s["enable"] = true
		opts := m{"rcloneConfigFile": drillRC, "status": s}
		for k, v := range more {
			opts[k] = v
		}
		return pgarchive(opts)
	}
	for _, f := range []struct {
		name, message string
		in            m
	}{
		{"no rclone.conf", "services.pgarchive.status.rcloneConfigFile is not set: the status check needs an rclone.conf",
			pgarchive(m{"status": m{"enable": true}})},
	} {
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
	for option, in := range map[string]m{
		"services.pgarchive.status.rcloneConfigFile": status(m{"rcloneConfigFile": store + "rc"}, nil),
		"services.pgarchive.environmentFile":         status(m{}, m{"environmentFile": store + "env"}),
	} {
		t.Run("type refuses "+option+" in the store", func(t *testing.T) {
			_, err := evalModule(t, lib, []any{in})
			expectTypeError(t, err, option, store)
		})
	}
	// What status would refuse at every run fails the build instead: the
	// binary's own parsers check the settings file.
	for _, f := range []struct {
		name, message string
		in            m
	}{
		{"maxAge in days", `status: max-age "1d"`, status(m{"maxAge": "1d"}, nil)},
		{"negative maxAge", `status: max-age "-1h" must not be negative`, status(m{"maxAge": "-1h"}, nil)},
		{"database -db", "status: database name", status(m{"databases": []string{"-db"}}, nil)},
		{"database my db", "status: database name", status(m{"databases": []string{"my db"}}, nil)},
		{"database .hidden", "status: database name", status(m{"databases": []string{".hidden"}}, nil)},
		{"empty database", "status: database name", status(m{"databases": []string{""}}, nil)},
	} {
		t.Run("build refuses "+f.name, func(t *testing.T) {
			res, err := evalModule(t, lib, []any{f.in})
			if err != nil {
				t.Fatal(err)
			}
			expectBuildRefusal(t, bin, res.Cases[0].Status, f.message)
		})
	}
	// An environment file may supply RCLONE_CONFIG instead.
	t.Run("accepts an environment file instead of rclone.conf", func(t *testing.T) {
		res, err := evalModule(t, lib, []any{pgarchive(m{"environmentFile": statusEnv, "status": m{"enable": true}})})
		if err != nil {
			t.Fatal(err)
		}
		u := res.Cases[0].Units["pgarchive-status"]
		expectAbsent(t, "pgarchive-status", u, "LoadCredential")
		if !reflect.DeepEqual(u.ServiceConfig["EnvironmentFile"], []any{statusEnv}) {
			t.Errorf("EnvironmentFile = %v, want [%s]", u.ServiceConfig["EnvironmentFile"], statusEnv)
		}
	})
}
