package nix_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
)

// The lifecycle half of the module (lifecycle.nix, notify.nix), evaluated
// with the real lib.evalModules: backlog and metrics settings, the prune
// unit with its own credentials, the notify templates wired into every unit
// pgarchive runs, the daily summary, root's wrapper, the assertions, and
// systemd-analyze on every new unit.

const (
	pruneRC       = "/run/secrets/pgarchive/rclone-prune.conf"
	hookFile      = "/run/secrets/pgarchive/webhook-url"
	metricsDir    = "/var/lib/prometheus-node-exporter-text"
	failureHook   = "pgarchive-notify-failure@%n.service"
	successHook   = "pgarchive-notify-success@%n.service"
	credWebhook   = `"$$CREDENTIALS_DIRECTORY/webhook-url"` // the helper expands it
	lifecycleHost = "hosts/pg1"
)

// sandbox is what prune and the notify units must carry: the drill's
// hardening plus W^X, which they can afford (no JIT).
func sandbox() m {
	s := m{"MemoryDenyWriteExecute": true, "UMask": "0077", "ProtectProc": "invisible", "RestrictSUIDSGID": true}
	for k, v := range hardening {
		s[k] = v
	}
	return s
}

// fullHost archives, drills, prunes with its own rclone.conf, checks status,
// writes metrics and notifies on everything.
func fullHost() m {
	return m{"services": m{
		"postgresql":       m{"enable": true},
		"postgresqlBackup": m{"enable": true, "databases": []string{"db1", "db2"}},
		"pgarchive": m{
			"enable": true, "recipients": []string{recipient}, "rcloneConfigFile": drillRC, "prefix": lifecycleHost,
			"stateDir": "/srv/pgarchive", "backlogMaxSize": "2Gi", "healAfterArchive": true,
			"metrics": m{"textfileDirectory": metricsDir},
			"prune": m{"enable": true, "databases": []string{"db1"}, "rcloneConfigFile": pruneRC, "startAt": "Sun *-*-* 05:00:00",
				"keep": m{"last": 3, "daily": 7, "weekly": 5, "monthly": 12, "yearly": -1, "within": "1y6m"}},
			"notify": m{"onFailure": true, "onSuccess": true, "webhookUrlFile": hookFile, "format": "json", "journalLines": 5,
				"summary": m{"enable": true}},
			"drill":  drillOn(m{"identityFile": drillIdentity}),
			"status": m{"enable": true, "databases": []string{"db1", "db2"}, "maxAge": "30h"},
		},
	}}
}

// plainURL has what systemd would expand (% and $) and split on (space).
const plainURL = "https://hooks.example.com/services/T0%2FB0?token=$x y"

func TestLifecycleModule(t *testing.T) {
	lib := nixpkgsLib(t)
	bin := harness.BuildBinary(t, "./cmd/pgarchive")

	inputs := []any{
		fullHost(),
		// Archive host with the lifecycle defaults.
		m{"services": m{"postgresqlBackup": m{"enable": true, "databases": []string{"db1"}},
			"pgarchive": m{"enable": true, "recipients": []string{recipient}, "rcloneConfigFile": drillRC}}},
		// A host that only prunes, with a plain webhook URL.
		pgarchive(m{"prune": m{"enable": true, "rcloneConfigFile": pruneRC, "keep": m{"last": 10}},
			"notify": m{"onFailure": true, "webhookUrl": plainURL}}),
		// A verifier that drills and sends the summary with the drill's rclone.conf.
		pgarchive(m{"drill": drillOn(m{"identityFile": drillIdentity, "rcloneConfigFile": "/run/secrets/ro.conf"}),
			"notify": m{"webhookUrlFile": hookFile, "summary": m{"enable": true, "startAt": "Mon *-*-* 09:00:00"}}}),
	}
	res, err := evalModule(t, lib, inputs)
	if err != nil {
		t.Fatal(err)
	}
	full, defaults, pruneHost, verifier := res.Cases[0], res.Cases[1], res.Cases[2], res.Cases[3]

	t.Run("full host", func(t *testing.T) {
		got := full
		exe := got.PackagePath + "/bin/pgarchive"
		checkSettings(t, bin, "archive", settingsFile{got.ConfigPath, got.ConfigJSON, got.ConfigBuild}, got.PackagePath, m{
			"remote": "archive-target-database:", "prefix": lifecycleHost, "recipients": []any{recipient},
			"rclone-config": "$CREDENTIALS_DIRECTORY/rclone.conf", "dump-dir": "/var/backup/postgresql", "dump-compression": "gzip",
			"state-dir": "/srv/pgarchive", "backlog-max-size": "2Gi", "metrics-dir": metricsDir,
		})
		for _, db := range []string{"db1", "db2"} {
			u := got.Units["postgresqlBackup-"+db]
			want := []any{exe + " --config " + got.ConfigPath + " archive --database " + db + " --file /var/backup/postgresql/" + db + ".sql.gz --heal"}
			if !reflect.DeepEqual(u.ServiceConfig["ExecStartPost"], want) {
				t.Errorf("%s ExecStartPost = %v, want %v", db, u.ServiceConfig["ExecStartPost"], want)
			}
			// user postgres writes the metrics; the backlog is its own.
			expectConfig(t, "postgresqlBackup-"+db, u, m{"SupplementaryGroups": []any{"pgarchive"}, "User": "postgres"})
			expectHooks(t, "postgresqlBackup-"+db, u, true, true)
		}

		drill := got.Units["pgarchive-drill"]
		expectConfig(t, "pgarchive-drill", drill, m{"SupplementaryGroups": []any{"pgarchive"}, "ReadWritePaths": []any{metricsDir}})
		expectHooks(t, "pgarchive-drill", drill, true, true)
		checkSettings(t, bin, "drill", settingsFile{got.Drill.ConfigPath, got.Drill.ConfigJSON, got.Drill.ConfigBuild}, got.PackagePath, m{
			"remote": "archive-target-database:", "prefix": lifecycleHost, "rclone-config": "$CREDENTIALS_DIRECTORY/rclone.conf", "metrics-dir": metricsDir,
			"identity-file": "$CREDENTIALS_DIRECTORY/identity", "pg-bin": got.Drill.PostgresqlPath + "/bin", "drill": m{"max-age": "26h"},
		})

		prune := got.Units["pgarchive-prune"]
		wantExec := exe + " --config " + got.Prune.Path + " prune"
		expectConfig(t, "pgarchive-prune", prune, sandbox(), m{
			"Type": "oneshot", "ExecStart": wantExec, "LoadCredential": []any{"rclone.conf:" + pruneRC},
			"SupplementaryGroups": []any{"pgarchive"}, "ReadWritePaths": []any{metricsDir},
		})
		expectHooks(t, "pgarchive-prune", prune, true, true)
		expectOnline(t, "pgarchive-prune", prune)
		expectTimer(t, got, "pgarchive-prune", "Sun *-*-* 05:00:00")
		// The keep rules are in the settings, checked by check-config.
		pruneSection := m{"database": []any{"db1"}, "keep-last": 3.0, "keep-daily": 7.0, "keep-weekly": 5.0, "keep-monthly": 12.0, "keep-yearly": -1.0, "keep-within": "1y6m"}
		checkSettings(t, bin, "prune", got.Prune, got.PackagePath, m{
			"remote": "archive-target-database:", "prefix": lifecycleHost, "rclone-config": "$CREDENTIALS_DIRECTORY/rclone.conf", "metrics-dir": metricsDir,
			"prune": pruneSection,
		})

		for _, event := range []string{"failure", "success"} {
			name := "pgarchive-notify-" + event + "@"
			u, ok := got.Units[name]
			if !ok {
				t.Fatalf("no template %s among %v", name, keys(got.Units))
			}
			expectConfig(t, name, u, sandbox(), m{
				"Type":                "oneshot",
				"ExecStart":           exe + " notify --event " + event + " --webhook-url-file " + credWebhook + " --format json --journal-lines 5 --unit %i",
				"LoadCredential":      []any{"webhook-url:" + hookFile},
				"SupplementaryGroups": []any{"systemd-journal"},
			})
			expectAbsent(t, name, u, "ReadWritePaths", "EnvironmentFile")
			expectHooks(t, name, u, false, false)
			expectOnline(t, name, u)
		}

		summary := got.Units["pgarchive-notify-summary"]
		expectConfig(t, "pgarchive-notify-summary", summary, sandbox(), m{
			"Type":                "oneshot",
			"ExecStart":           exe + " --config " + got.Summary.Path + " notify --event summary --webhook-url-file " + credWebhook + " --format json",
			"LoadCredential":      []any{"rclone.conf:" + drillRC, "webhook-url:" + hookFile},
			"SupplementaryGroups": []any{"pgarchive"},
		})
		expectHooks(t, "pgarchive-notify-summary", summary, false, false)
		expectTimer(t, got, "pgarchive-notify-summary", "*-*-* 08:00:00")
		checkSettings(t, bin, "summary", got.Summary, got.PackagePath, m{
			"remote": "archive-target-database:", "prefix": lifecycleHost, "rclone-config": "$CREDENTIALS_DIRECTORY/rclone.conf", "state-dir": "/srv/pgarchive",
		})

		expectSet(t, "tmpfiles rules", got.Tmpfiles, "d '/srv/pgarchive' 0750 postgres pgarchive - -", "d '"+metricsDir+"' 2775 root pgarchive - -")
		expectSet(t, "groups", got.Groups, "pgarchive")

		// Root's settings: the archive settings with the files themselves;
		// prune deletes with the prune unit's credentials and rules, status
		// checks what the unit checks (realbin_test runs them).
		pruneRoot := m{}
		for k, v := range pruneSection {
			pruneRoot[k] = v
		}
		pruneRoot["rclone-config"] = pruneRC
		checkRoot(t, bin, got, m{
			"remote": "archive-target-database:", "prefix": lifecycleHost, "recipients": []any{recipient},
			"rclone-config": drillRC, "dump-dir": "/var/backup/postgresql", "dump-compression": "gzip",
			"state-dir": "/srv/pgarchive", "backlog-max-size": "2Gi", "metrics-dir": metricsDir,
			"identity-file": drillIdentity, "pg-bin": got.Drill.PostgresqlPath + "/bin",
			"prune": pruneRoot, "status": m{"database": []any{"db1", "db2"}, "max-age": "30h"},
		}, "")

		verifyAll(t, bin, got)
	})

	t.Run("archive host defaults", func(t *testing.T) {
		got := defaults
		checkSettings(t, bin, "archive", settingsFile{got.ConfigPath, got.ConfigJSON, got.ConfigBuild}, got.PackagePath, m{
			"remote": "archive-target-database:", "recipients": []any{recipient},
			"rclone-config": "$CREDENTIALS_DIRECTORY/rclone.conf", "dump-dir": "/var/backup/postgresql", "dump-compression": "gzip",
			"state-dir": "/var/lib/pgarchive", "backlog-max-size": "10Gi",
		})
		u := got.Units["postgresqlBackup-db1"]
		if post := toStrings(u.ServiceConfig["ExecStartPost"]); len(post) != 1 || strings.Contains(post[0], "--heal") {
			t.Errorf("ExecStartPost %v: want one archive line without --heal", post)
		}
		expectAbsent(t, "postgresqlBackup-db1", u, "SupplementaryGroups")
		expectHooks(t, "postgresqlBackup-db1", u, false, false)
		if len(got.Units) != 1 || len(got.Timers) != 0 {
			t.Errorf("units %v, timers %v: want only the backup unit", keys(got.Units), got.Timers)
		}
		expectSet(t, "tmpfiles rules", got.Tmpfiles, "d '/var/lib/pgarchive' 0750 postgres pgarchive - -")
		expectSet(t, "groups", got.Groups, "pgarchive")
	})

	t.Run("prune-only host", func(t *testing.T) {
		got := pruneHost
		exe := got.PackagePath + "/bin/pgarchive"
		if len(got.Units) != 2 || len(got.Timers) != 1 {
			t.Errorf("units %v, timers %v: want pgarchive-prune, its failure hook and timer", keys(got.Units), got.Timers)
		}
		prune := got.Units["pgarchive-prune"]
		expectConfig(t, "pgarchive-prune", prune, sandbox(), m{
			"ExecStart": exe + " --config " + got.Prune.Path + " prune", "LoadCredential": []any{"rclone.conf:" + pruneRC},
		})
		expectAbsent(t, "pgarchive-prune", prune, "SupplementaryGroups", "ReadWritePaths")
		expectHooks(t, "pgarchive-prune", prune, true, false)
		expectTimer(t, got, "pgarchive-prune", "*-*-* 04:00:00")
		checkSettings(t, bin, "prune", got.Prune, got.PackagePath, m{"remote": "archive-target-database:", "rclone-config": "$CREDENTIALS_DIRECTORY/rclone.conf",
			"prune": m{"keep-last": 10.0}})

		hook := got.Units["pgarchive-notify-failure@"]
		// % and $ doubled, the whole URL quoted: systemd passes it verbatim.
		expectConfig(t, "pgarchive-notify-failure@", hook, m{
			"ExecStart": exe + ` notify --event failure --webhook-url "https://hooks.example.com/services/T0%%2FB0?token=$$x y" --format slack --journal-lines 20 --unit %i`,
		})
		expectAbsent(t, "pgarchive-notify-failure@", hook, "LoadCredential")
		if _, ok := got.Units["pgarchive-notify-success@"]; ok {
			t.Errorf("a success template without notify.onSuccess")
		}
		if len(got.Tmpfiles) != 0 || len(got.Groups) != 0 {
			t.Errorf("tmpfiles %v, groups %v on a host without backlog or metrics", got.Tmpfiles, got.Groups)
		}

		// Root reads the archives with prune's rclone.conf on this host.
		checkRoot(t, bin, got, m{"remote": "archive-target-database:", "rclone-config": pruneRC,
			"prune": m{"keep-last": 10.0, "rclone-config": pruneRC}}, "")

		verifyAll(t, bin, got)
	})

	t.Run("verifier with summary", func(t *testing.T) {
		got := verifier
		summary := got.Units["pgarchive-notify-summary"]
		expectConfig(t, "pgarchive-notify-summary", summary, m{
			"LoadCredential": []any{"rclone.conf:/run/secrets/ro.conf", "webhook-url:" + hookFile},
		})
		expectAbsent(t, "pgarchive-notify-summary", summary, "SupplementaryGroups")
		expectHooks(t, "pgarchive-drill", got.Units["pgarchive-drill"], false, false)
		expectTimer(t, got, "pgarchive-notify-summary", "Mon *-*-* 09:00:00")
		checkSettings(t, bin, "summary", got.Summary, got.PackagePath, m{"remote": "archive-target-database:", "rclone-config": "$CREDENTIALS_DIRECTORY/rclone.conf"})
		if len(got.Tmpfiles) != 0 || len(got.Groups) != 0 {
			t.Errorf("tmpfiles %v, groups %v on a verifier without metrics", got.Tmpfiles, got.Groups)
		}
		verifyAll(t, bin, got)
	})

	store := "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-"
	withPG := func(opts m) m {
		opts["enable"], opts["recipients"], opts["rcloneConfigFile"] = true, []string{recipient}, drillRC
		return m{"services": m{"postgresqlBackup": m{"enable": true, "databases": []string{"db1"}}, "pgarchive": opts}}
	}
	prune := func(p m) m {
		p["enable"] = true
		return pgarchive(m{"rcloneConfigFile": drillRC, "prune": p})
	}
	failures := []struct {
		name, message string
		in            m
	}{
		{"prune without rclone.conf", "services.pgarchive.prune.rcloneConfigFile is not set",
			pgarchive(m{"prune": m{"enable": true, "keep": m{"last": 1}}})},
		{"notify without a webhook", "services.pgarchive.notify: no webhook: set exactly one of notify.webhookUrl or notify.webhookUrlFile.",
			withPG(m{"notify": m{"onFailure": true}})},
		{"notify with both webhooks", "set exactly one of notify.webhookUrl or notify.webhookUrlFile, not both.",
			withPG(m{"notify": m{"onSuccess": true, "webhookUrl": "https://x", "webhookUrlFile": hookFile}})},
		{"summary without rclone.conf", "services.pgarchive.notify.summary needs an rclone.conf",
			pgarchive(m{"notify": m{"webhookUrlFile": hookFile, "summary": m{"enable": true}}})},
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
	// Keep rules and sizes are the binary's to parse: the settings file's
	// build (check-config) refuses them, naming the rule.
	for _, f := range []struct {
		name, message string
		in            m
		file          func(evalCase) settingsFile
	}{
		{"prune without a keep rule", "prune: no keep rule", prune(m{}), func(c evalCase) settingsFile { return c.Prune }},
		{"prune with only zero rules", "prune: no keep rule", prune(m{"keep": m{"last": 0, "daily": 0}}), func(c evalCase) settingsFile { return c.Prune }},
		{"a negative keep count", "prune: retention: keep-daily -2", prune(m{"keep": m{"daily": -2}}), func(c evalCase) settingsFile { return c.Prune }},
		{"keep.within in words", `prune: keep-within: duration "30 days"`, prune(m{"keep": m{"within": "30 days"}}), func(c evalCase) settingsFile { return c.Prune }},
		{"keep.within months or minutes", `"m" is ambiguous`, prune(m{"keep": m{"within": "6m"}}), func(c evalCase) settingsFile { return c.Prune }},
		{"keep.within minutes after days", `keep-within: duration "2d30m"`, prune(m{"keep": m{"within": "2d30m"}}), func(c evalCase) settingsFile { return c.Prune }},
		{"bad backlog size", "backlog-max-size", withPG(m{"backlogMaxSize": "lots"}),
			func(c evalCase) settingsFile { return settingsFile{c.ConfigPath, c.ConfigJSON, c.ConfigBuild} }},
	} {
		t.Run("build refuses "+f.name, func(t *testing.T) {
			got, err := evalModule(t, lib, []any{f.in})
			if err != nil {
				t.Fatal(err)
			}
			expectBuildRefusal(t, bin, f.file(got.Cases[0]), f.message)
		})
	}
	// Paths in the store, relative or with what systemd would split or
	// expand: refused by the options' types.
	for _, f := range []struct {
		option, value string
		in            m
	}{
		{"services.pgarchive.prune.rcloneConfigFile", store + "rc", prune(m{"keep": m{"last": 1}, "rcloneConfigFile": store + "rc"})},
		{"services.pgarchive.notify.webhookUrlFile", store + "hook", withPG(m{"notify": m{"onFailure": true, "webhookUrlFile": store + "hook"}})},
		{"services.pgarchive.metrics.textfileDirectory", "metrics", withPG(m{"metrics": m{"textfileDirectory": "metrics"}})},
		{"services.pgarchive.stateDir", store + "state", withPG(m{"stateDir": store + "state"})},
		// systemd would drop the credential (%z is a specifier) or split the
		// list at the space.
		{"services.pgarchive.rcloneConfigFile", "/run/secrets/%zrclone.conf", pgarchive(m{"rcloneConfigFile": "/run/secrets/%zrclone.conf",
			"prune": m{"enable": true, "keep": m{"last": 1}}})},
		{"services.pgarchive.metrics.textfileDirectory", "/var/lib/node exporter", withPG(m{"metrics": m{"textfileDirectory": "/var/lib/node exporter"}})},
		{"services.pgarchive.environmentFile", "/run/secrets/env file", withPG(m{"environmentFile": "/run/secrets/env file"})},
	} {
		t.Run("type refuses "+f.option+" = "+f.value, func(t *testing.T) {
			_, err := evalModule(t, lib, []any{f.in})
			expectTypeError(t, err, f.option, f.value)
		})
	}
	// Option types, not assertions: evaluation fails naming the option.
	for option, in := range map[string]m{
		"services.pgarchive.prune.keep.daily":      prune(m{"keep": m{"daily": "seven"}}),
		"services.pgarchive.notify.journalLines":   withPG(m{"notify": m{"onFailure": true, "webhookUrlFile": hookFile, "journalLines": 500}}),
		"services.pgarchive.notify.format":         withPG(m{"notify": m{"onFailure": true, "webhookUrlFile": hookFile, "format": "teams"}}),
		"services.pgarchive.notify.webhookUrlFile": withPG(m{"notify": m{"onFailure": true, "webhookUrlFile": 3}}),
	} {
		t.Run("rejects a bad "+option, func(t *testing.T) {
			_, err := evalModule(t, lib, []any{in})
			if err == nil || !strings.Contains(err.Error(), option) {
				t.Fatalf("accepted, or the error does not name %s: %v", option, err)
			}
		})
	}
}
