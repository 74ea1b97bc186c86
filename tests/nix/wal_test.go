package nix_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
)

// services.pgarchive.wal (wal.nix) under the real lib.evalModules: the
// server's settings run wal-push with the archive units' settings file,
// the postgresql unit gets their credentials and the backlog directory,
// and pgarchive-basebackup runs as postgres on a timer; its assertions.
func TestWALModule(t *testing.T) {
	lib := nixpkgsLib(t)
	bin := harness.BuildBinary(t, "./cmd/pgarchive")
	rc := "/run/secrets/pgarchive/rclone.conf"
	host := func(wal m) map[string]any {
		c := services(m{"databases": []string{"db1"}}, m{"recipients": []string{recipient}, "rcloneConfigFile": rc, "signingKeyFile": "/run/secrets/sign", "wal": wal})
		c["services"].(m)["postgresql"] = m{"enable": true}
		return c
	}
	res, err := evalModule(t, lib, []any{
		host(m{"enable": true}),
		host(m{"enable": true, "durability": "one-upstream-and-backlog", "compression": "none", "archiveTimeout": "60s", "async": false,
			"baseBackup": m{"startAt": "daily", "compression": "zstd"}}),
	})
	if err != nil {
		t.Fatal(err)
	}
	def, custom := res.Cases[0], res.Cases[1]
	wantPush := def.PackagePath + "/bin/pgarchive --config " + def.ConfigPath + " wal-push --durability every-upstream --compression zstd --async --async-jobs 2 %p"
	if got := def.PostgresqlSettings["archive_command"]; got != wantPush {
		t.Errorf("archive_command = %v\nwant %s", got, wantPush)
	}
	for k, v := range map[string]any{"archive_mode": "on", "wal_level": "replica", "archive_timeout": "5min"} {
		if def.PostgresqlSettings[k] != v {
			t.Errorf("%s = %v, want %v", k, def.PostgresqlSettings[k], v)
		}
	}
	if got := custom.PostgresqlSettings["archive_command"]; !strings.Contains(got.(string), "--durability one-upstream-and-backlog --compression none %p") || custom.PostgresqlSettings["archive_timeout"] != "60s" {
		t.Errorf("custom archive_command %v, timeout %v", got, custom.PostgresqlSettings["archive_timeout"])
	}
	pg := def.Units["postgresql"]
	expectConfig(t, "postgresql", pg, m{}, m{
		"LoadCredential": []any{"rclone.conf:" + rc, "signing-key:/run/secrets/sign"},
		"ReadWritePaths": []any{"/var/lib/pgarchive"},
	})
	bb, ok := def.Units["pgarchive-basebackup"]
	if !ok {
		t.Fatalf("no pgarchive-basebackup among %v", keys(def.Units))
	}
	expectConfig(t, "pgarchive-basebackup", bb, m{}, m{"User": "postgres", "DynamicUser": false})
	exec, _ := bb.ServiceConfig["ExecStart"].(string)
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(def.PackagePath+"/bin/pgarchive --config "+def.ConfigPath+" basebackup --compression gzip --pg-bin ") + `/nix/store/[a-z0-9]+-postgresql-[0-9.]+/bin$`).MatchString(exec) {
		t.Errorf("pgarchive-basebackup ExecStart = %q", exec)
	}
	if _, ok := custom.Units["pgarchive-wal-uploader"]; ok {
		t.Error("an uploader without async")
	}
	up, ok := def.Units["pgarchive-wal-uploader"]
	if !ok {
		t.Fatalf("async (the default): no pgarchive-wal-uploader among %v", keys(def.Units))
	}
	expectConfig(t, "pgarchive-wal-uploader", up, m{}, m{"User": "postgres", "Restart": "always",
		"ExecStart":      def.PackagePath + "/bin/pgarchive --config " + def.ConfigPath + " wal-push --uploader --uploader-idle 0 --pgdata /var/lib/postgresql/16 --durability every-upstream --compression zstd --async-jobs 2",
		"ReadWritePaths": []any{"/var/lib/postgresql/16", "/var/lib/pgarchive"}})
	verifyAll(t, bin, custom)
	expectTimer(t, def, "pgarchive-basebackup", "weekly")
	expectTimer(t, custom, "pgarchive-basebackup", "daily")
	verifyAll(t, bin, def)

	_, err = evalModule(t, lib, []any{services(m{"databases": []string{"db1"}}, m{"recipients": []string{recipient}, "rcloneConfigFile": rc, "wal": m{"enable": true}})})
	if err == nil || !strings.Contains(err.Error(), "archives the WAL of services.postgresql") {
		t.Errorf("wal without PostgreSQL: %v", err)
	}
}
