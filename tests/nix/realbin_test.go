package nix_test

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
)

// TestRenderedCommandsRunTheRealBinary runs what the lifecycle units and
// root's wrapper would run, with the pgarchive built from this tree instead
// of the stub: the settings files, flags and credential paths the module
// renders must be accepted by the helper's own parser, not just by
// check-config. The remote is a union of two local folders; LoadCredential=
// is done as systemd does it (a directory of copies, CREDENTIALS_DIRECTORY),
// %i and ${CREDENTIALS_DIRECTORY} expanded. Notices use --dry-run (no post).
func TestRenderedCommandsRunTheRealBinary(t *testing.T) {
	lib := nixpkgsLib(t)
	bin := harness.BuildBinary(t, "./cmd/pgarchive")
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	for _, d := range []string{secrets, filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "state"), filepath.Join(dir, "metrics")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	union := harness.UnionSection(harness.UnionName, filepath.Join(dir, "a"), filepath.Join(dir, "b"))
	rc := harness.WriteRcloneConf(t, secrets, union)
	pruneConf := filepath.Join(secrets, "rclone-prune.conf")
	data, _ := os.ReadFile(rc)
	os.WriteFile(pruneConf, data, 0o600)
	hook := filepath.Join(secrets, "webhook-url")
	os.WriteFile(hook, []byte("http://127.0.0.1:9/never-posted\n"), 0o600)

	host := fullHost()
	dumps := filepath.Join(dir, "dumps")
	os.MkdirAll(dumps, 0o700)
	for _, db := range []string{"db1", "db2"} {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write([]byte("CREATE TABLE t (v text);\n-- " + db + "\n"))
		zw.Close()
		os.WriteFile(filepath.Join(dumps, db+".sql.gz"), gz.Bytes(), 0o600)
	}
	host["services"].(m)["postgresqlBackup"].(m)["location"] = dumps
	pg := host["services"].(m)["pgarchive"].(m)
	pg["remote"] = harness.UnionName + ":"
	pg["rcloneConfigFile"], pg["stateDir"] = rc, filepath.Join(dir, "state")
	pg["metrics"] = m{"textfileDirectory": filepath.Join(dir, "metrics")}
	pg["prune"].(m)["rcloneConfigFile"] = pruneConf
	pg["notify"].(m)["webhookUrlFile"] = hook
	res, err := evalModule(t, lib, []any{host})
	if err != nil {
		t.Fatal(err)
	}
	got := res.Cases[0]

	// The store as far as these commands need it.
	pairs := []string{got.PackagePath + "/bin/pgarchive", bin}
	for i, s := range []settingsFile{{got.ConfigPath, got.ConfigJSON, ""}, got.Prune, got.Summary} {
		p := filepath.Join(dir, "settings-"+string(rune('0'+i))+".json")
		os.WriteFile(p, []byte(s.JSON), 0o644)
		pairs = append(pairs, s.Path, p)
	}
	store := strings.NewReplacer(pairs...)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}

	// unitRun runs a unit's ExecStart (instance: %i), or the backup units'
	// ExecStartPost, with its credentials.
	unitRun := func(name, instance string, extra ...string) string {
		t.Helper()
		u := got.Units[name]
		exec0 := "ExecStart"
		if strings.HasPrefix(name, "postgresqlBackup") {
			exec0 = "ExecStartPost"
		}
		creds := t.TempDir()
		for _, lc := range toStrings(u.ServiceConfig["LoadCredential"]) {
			id, src, _ := strings.Cut(lc, ":")
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatalf("%s LoadCredential=%s: %v", name, lc, err)
			}
			os.WriteFile(filepath.Join(creds, id), data, 0o400)
		}
		line := toStrings(u.ServiceConfig[exec0])[0]
		line = strings.NewReplacer("%i", instance, "${CREDENTIALS_DIRECTORY}", creds).Replace(store.Replace(line))
		args := append(strings.Fields(line), extra...)
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(env, "CREDENTIALS_DIRECTORY="+creds)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	t.Run("archive step", func(t *testing.T) {
		for _, db := range []string{"db1", "db2"} {
			unitRun("postgresqlBackup-"+db, "")
			for _, up := range []string{"a", "b"} {
				if found, _ := filepath.Glob(filepath.Join(dir, up, lifecycleHost, db, db+"_*.sql.gz.age")); len(found) != 1 {
					t.Errorf("upstream %s holds %v for %s, want one archive", up, found, db)
				}
			}
		}
	})
	t.Run("prune unit", func(t *testing.T) {
		out := unitRun("pgarchive-prune", "", "--dry-run")
		if !strings.Contains(out, "keep-last 3, keep-daily 7, keep-weekly 5, keep-monthly 12, keep-yearly all, keep-within 545d") {
			t.Errorf("prune did not plan with the module's rules:\n%s", out)
		}
		// For real: keep-last 3 keeps db1's only archive (db2 is not pruned).
		unitRun("pgarchive-prune", "")
		for _, up := range []string{"a", "b"} {
			if found, _ := filepath.Glob(filepath.Join(dir, up, lifecycleHost, "db1", "db1_*.sql.gz.age")); len(found) != 1 {
				t.Errorf("after prune, upstream %s holds %v", up, found)
			}
		}
	})
	t.Run("failure hook", func(t *testing.T) {
		out := unitRun("pgarchive-notify-failure@", "postgresqlBackup-db1.service", "--dry-run")
		if !strings.Contains(out, `"unit":"postgresqlBackup-db1.service"`) || !strings.Contains(out, `"database":"db1"`) {
			t.Errorf("notice does not name the unit and database:\n%s", out)
		}
	})
	t.Run("summary", func(t *testing.T) {
		out := unitRun("pgarchive-notify-summary", "", "--dry-run")
		if !strings.Contains(out, `"event":"summary"`) || !strings.Contains(out, `"backlog":{"archives":0`) {
			t.Errorf("summary without the backlog of the state directory:\n%s", out)
		}
		for _, up := range []string{"a", "b"} {
			if !strings.Contains(out, `"name":"`+filepath.Join(dir, up)+`","archives":2,`) {
				t.Errorf("summary does not count db1 and db2 on upstream %s:\n%s", up, out)
			}
		}
	})

	t.Run("root wrapper", func(t *testing.T) {
		text := store.Replace(got.Wrappers[0].Text)
		script := filepath.Join(dir, "wrapper")
		os.WriteFile(script, []byte(text), 0o755)
		for _, args := range [][]string{
			{"list"},
			{"status"},
			{"retry"},
			{"heal", "--dry-run"},
			{"prune", "--dry-run", "--keep-last", "1"},
		} {
			cmd := exec.Command("bash", append([]string{script}, args...)...)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("root's pgarchive %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	})
}
