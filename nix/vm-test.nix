# NixOS VM test (flake check "vm"): PostgreSQL, two MinIO servers behind an
# rclone union, keys generated in the VM (no sops), metrics, prune, the
# status check, notifications to a small webhook listener, the backlog; and a
# verifier host that runs only the drill and the status check against the
# same remote. Needs a Nix host with KVM; tests/nspawn and tests/nix mirror it
# under real systemd where Nix is unavailable.
{ pkgs, module }:

let
  minioUser = "pgarchive-test";
  minioPassword = "pgarchive-test-secret";

  signer = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPzwqLCBOKwYqZDj2BXCl8ooh7X6KxfFgPtR3BL1XCfq root@db1";

  rcloneConf = host: pkgs.writeText "rclone.conf" ''
    [minio-a]
    type = s3
    provider = Minio
    endpoint = http://${host}:9000
    access_key_id = ${minioUser}
    secret_access_key = ${minioPassword}
    region = us-east-1

    [minio-b]
    type = s3
    provider = Minio
    endpoint = http://${host}:9010
    access_key_id = ${minioUser}
    secret_access_key = ${minioPassword}
    region = us-east-1

    [archive-target-database]
    type = union
    upstreams = minio-a:pgarchive minio-b:pgarchive
    create_policy = all
    action_policy = all
    search_policy = ff
  '';

  # Stores each POSTed body as /var/lib/webhook/NNNN.json.
  webhookListener = pkgs.writeText "webhook-listener.py" ''
    import http.server
    import itertools

    counter = itertools.count()


    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with open("/var/lib/webhook/%04d.json" % next(counter), "wb") as f:
                f.write(body)
            self.send_response(200)
            self.end_headers()


    http.server.HTTPServer(("127.0.0.1", 8099), Handler).serve_forever()
  '';

  minioService = port: {
    wantedBy = [ "multi-user.target" ];
    environment = {
      MINIO_ROOT_USER = minioUser;
      MINIO_ROOT_PASSWORD = minioPassword;
      MINIO_UPDATE = "off";
    };
    serviceConfig = {
      DynamicUser = true;
      StateDirectory = "minio-${toString port}";
      # Reachable from the verifier node too.
      ExecStart = "${pkgs.minio}/bin/minio server /var/lib/minio-${toString port} --address :${toString port} --console-address 127.0.0.1:${toString (port + 1)}";
    };
  };
in
pkgs.testers.runNixOSTest {
  name = "pgarchive";

  nodes.machine = {
    imports = [ module ];
    virtualisation.memorySize = 2048;
    environment.systemPackages = [ pkgs.age pkgs.rclone ];

    services.postgresql = {
      enable = true;
      ensureDatabases = [ "db1" ];
    };
    services.postgresqlBackup = {
      enable = true;
      databases = [ "db1" ];
    };
    # A test-only signing key (nix/vm-test-signing-key); a real host uses
    # its /etc/ssh/ssh_host_ed25519_key or a sops/agenix secret.
    environment.etc."pgarchive-test/signing-key" = { source = ./vm-test-signing-key; mode = "0400"; user = "postgres"; };
    services.pgarchive = {
      enable = true;
      signingKeyFile = "/etc/pgarchive-test/signing-key";
      trustedSigners = [ signer ];
      identityFile = "/run/keys/pgarchive/identity";
      rcloneConfigFile = "/run/keys/pgarchive/rclone.conf";
      prefix = "vmtest";
      healAfterArchive = true;
      metrics.textfileDirectory = "/var/lib/prometheus-node-exporter-text";
      # Started by hand below; its own rclone.conf defaults to the one above.
      prune = {
        enable = true;
        keep.last = 1;
      };
      notify = {
        onFailure = true;
        onSuccess = true;
        webhookUrlFile = "/run/keys/pgarchive/webhook-url";
        format = "json";
        summary.enable = true;
      };
      # Started by hand below; its timer may fire too, so notices are
      # matched to a run by its invocation id.
      status = {
        enable = true;
        databases = [ "db1" ];
      };
    };

    systemd.services.webhook-listener = {
      wantedBy = [ "multi-user.target" ];
      serviceConfig = {
        ExecStart = "${pkgs.python3}/bin/python3 ${webhookListener}";
        StateDirectory = "webhook";
      };
    };

    systemd.services.minio-a = minioService 9000;
    systemd.services.minio-b = minioService 9010;
    networking.firewall.allowedTCPPorts = [ 9000 9010 ];
  };

  # A host that only checks the archives: no PostgreSQL server, no
  # postgresqlBackup, no archive key; the drill brings its own PostgreSQL.
  nodes.verifier = {
    imports = [ module ];
    virtualisation.memorySize = 1536;
    services.pgarchive = {
      rcloneConfigFile = "/run/keys/pgarchive/rclone.conf";
      prefix = "vmtest";
      trustedSigners = [ signer ];
      drill = {
        enable = true;
        identityFile = "/run/keys/pgarchive/identity";
        databases = [ "db1" ];
        checks.db1 = [
          { query = "select count(*) from t"; expect = ">= 1"; }
          { query = "select v from t order by v limit 1"; expect = "pgarchive-marker"; }
        ];
      };
      status.enable = true;
    };
  };

  testScript = ''
    rc = "rclone --config /run/keys/pgarchive/rclone.conf"

    def archives(upstream):
        return machine.succeed(f"{rc} lsf {upstream}:pgarchive/vmtest/db1 --include '*.age'").split()

    def webhook(event, unit):
        # The notices that arrived for this event and unit (json format).
        return machine.wait_until_succeeds(
            f"grep -l '\"event\":\"{event}\"' /var/lib/webhook/*.json | xargs grep -l '\"unit\":\"{unit}\"'"
        ).split()

    def notice_of_last_run(event, unit):
        # The notice of the newest run of unit, not of an earlier (timer) run.
        run = machine.succeed(f"systemctl show -P InvocationID {unit}").strip()
        return machine.wait_until_succeeds(
            f"grep -l '\"invocation_id\":\"{run}\"' /var/lib/webhook/*.json | xargs grep -l '\"event\":\"{event}\"'"
        ).split()

    def status_ok(value):
        machine.succeed(
            "grep -Eq '^pgarchive_status_ok[{].*database=\"db1\".*[}] " + value + "$'"
            " /var/lib/prometheus-node-exporter-text/pgarchive-status.prom"
        )

    def decrypt_latest(upstream):
        names = machine.succeed(f"{rc} lsf {upstream}:pgarchive/vmtest/db1 --include '*.age'").split()
        assert len(names) >= 1, f"no archive on {upstream}: {names}"
        latest = sorted(names)[-1]
        return machine.succeed(
            f"{rc} cat {upstream}:pgarchive/vmtest/db1/{latest}"
            " | age -d -i /run/keys/pgarchive/identity | gunzip"
        )

    machine.wait_for_unit("multi-user.target")
    machine.wait_for_open_port(9000)
    machine.wait_for_open_port(9010)
    machine.succeed(
        "install -d -m 0700 /run/keys/pgarchive",
        "age-keygen -o /run/keys/pgarchive/identity",
        "install -m 0600 ${rcloneConf "127.0.0.1"} /run/keys/pgarchive/rclone.conf",
        "echo http://127.0.0.1:8099/hook > /run/keys/pgarchive/webhook-url",
        f"{rc} mkdir minio-a:pgarchive",
        f"{rc} mkdir minio-b:pgarchive",
    )
    machine.wait_until_succeeds("sudo -u postgres psql -d db1 -c 'select 1'")
    machine.succeed(
        "sudo -u postgres psql -d db1 -c \"create table t (v text); insert into t values ('pgarchive-marker')\""
    )

    with subtest("the backup unit dumps, encrypts and uploads to both upstreams"):
        machine.succeed("systemctl start postgresqlBackup-db1.service")
        for upstream in ["minio-a", "minio-b"]:
            assert "pgarchive-marker" in decrypt_latest(upstream)
        machine.succeed("journalctl -u postgresqlBackup-db1 -o verbose | grep -q PGARCHIVE_UPSTREAM=")
        machine.succeed("journalctl PGARCHIVE_DATABASE=db1 | grep -q .")

    with subtest("every manifest is signed, and stock ssh-keygen accepts the signature"):
        names = machine.succeed(f"{rc} lsf minio-a:pgarchive/vmtest/db1 --include '*.manifest.json'").split()
        latest = sorted(names)[-1]
        machine.succeed(
            f"{rc} cat minio-a:pgarchive/vmtest/db1/{latest} > /tmp/m.json",
            f"{rc} cat minio-a:pgarchive/vmtest/db1/{latest}.sig > /tmp/m.json.sig",
            "ssh-keygen -Y check-novalidate -n pgarchive -s /tmp/m.json.sig < /tmp/m.json",
        )

    with subtest("a success notice reaches the webhook, metrics reach the textfile directory"):
        machine.wait_for_open_port(8099)
        webhook("success", "postgresqlBackup-db1.service")
        machine.succeed(
            "stat -c '%a %G' /var/lib/prometheus-node-exporter-text | grep -qx '2775 pgarchive'",
            "stat -c %a /var/lib/prometheus-node-exporter-text/pgarchive-archive-db1.prom | grep -qx 644",
            "stat -c '%a %U %G' /var/lib/pgarchive | grep -qx '750 postgres pgarchive'",
        )

    with subtest("the status check's unit passes, writes its metrics and reports"):
        machine.succeed("systemctl start pgarchive-status.service")
        notice_of_last_run("success", "pgarchive-status.service")
        # Written by the unit's transient user, in the group node_exporter reads.
        machine.succeed(
            "stat -c '%a %G' /var/lib/prometheus-node-exporter-text/pgarchive-status.prom | grep -qx '644 pgarchive'",
            "systemctl list-timers pgarchive-status.timer | grep -q pgarchive-status.service",
        )
        status_ok("1")

    with subtest("root's wrapper runs with the same settings"):
        machine.succeed("sleep 1; pgarchive archive --database db1")

    with subtest("the verifier's drill restores the newest archive and runs its checks"):
        identity = machine.succeed("base64 -w0 /run/keys/pgarchive/identity").strip()
        verifier.wait_for_unit("multi-user.target")
        verifier.succeed(
            "install -d -m 0700 /run/keys/pgarchive",
            f"echo {identity} | base64 -d > /run/keys/pgarchive/identity",
            "chmod 0600 /run/keys/pgarchive/identity",
            "install -m 0600 ${rcloneConf "machine"} /run/keys/pgarchive/rclone.conf",
        )
        verifier.succeed("systemctl start pgarchive-drill.service")
        # One summary entry per database, with journald fields.
        verifier.succeed("journalctl PGARCHIVE_DATABASE=db1 PGARCHIVE_DRILL=passed | grep -q .")
        # initdb refuses root: the unit runs as a transient user.
        verifier.succeed("systemctl show -p DynamicUser pgarchive-drill.service | grep -qx DynamicUser=yes")
        # The status check needs no postgresqlBackup either.
        verifier.succeed("systemctl start pgarchive-status.service")

    with subtest("root's wrapper on the verifier lists, verifies and restores"):
        assert "db1_" in verifier.succeed("pgarchive list --database db1")
        verifier.succeed("pgarchive verify --database db1 --latest --deep")
        assert "pgarchive-marker" in verifier.succeed("pgarchive restore --database db1 --latest --output -")

    with subtest("status, prune (dry run, then for real) and the summary"):
        machine.succeed("pgarchive status --database db1")
        machine.succeed("test -f /var/lib/prometheus-node-exporter-text/pgarchive-status.prom")
        assert len(archives("minio-a")) >= 2, archives("minio-a")
        plan = machine.succeed("pgarchive prune --dry-run --keep-last 1")
        assert "remove" in plan, plan
        assert len(archives("minio-a")) >= 2, "a dry run deleted archives"
        machine.succeed("systemctl start pgarchive-prune.service")
        for upstream in ["minio-a", "minio-b"]:
            assert len(archives(upstream)) == 1, archives(upstream)
            assert "pgarchive-marker" in decrypt_latest(upstream)
        webhook("success", "pgarchive-prune.service")
        machine.succeed("test -f /var/lib/prometheus-node-exporter-text/pgarchive-prune.prom")
        machine.succeed("systemctl start pgarchive-notify-summary.service")
        machine.wait_until_succeeds("grep -l '\"event\":\"summary\"' /var/lib/webhook/*.json")

    with subtest("a failing check fails the drill"):
        machine.succeed("sudo -u postgres psql -d db1 -c 'delete from t'")
        machine.succeed("systemctl start postgresqlBackup-db1.service")
        verifier.fail("systemctl start pgarchive-drill.service")
        verifier.succeed("systemctl is-failed pgarchive-drill.service")
        verifier.succeed("journalctl PGARCHIVE_DATABASE=db1 PGARCHIVE_DRILL=failed | grep -q .")

    with subtest("a failed upload fails the unit, notifies, and the backlog keeps it for retry"):
        machine.succeed("systemctl stop minio-b.service")
        machine.fail("systemctl start postgresqlBackup-db1.service")
        machine.succeed("systemctl is-failed postgresqlBackup-db1.service")
        notice = webhook("failure", "postgresqlBackup-db1.service")[0]
        machine.succeed(f"grep -q '\"database\":\"db1\"' {notice}")
        machine.succeed("find /var/lib/pgarchive/backlog/entries -name data.age | grep -q .")
        machine.fail("pgarchive status --database db1")
        # The scheduled check fails too (minio-b UNLISTED) and says so.
        machine.fail("systemctl start pgarchive-status.service")
        notice = notice_of_last_run("failure", "pgarchive-status.service")[0]
        machine.succeed(f"grep -q '\"unit\":\"pgarchive-status.service\"' {notice}")
        status_ok("0")
        machine.succeed("systemctl start minio-b.service")
        machine.wait_for_open_port(9010)
        machine.succeed("pgarchive retry")
        machine.succeed("pgarchive status --database db1")
        machine.succeed("systemctl start pgarchive-status.service")
        status_ok("1")
        machine.fail("find /var/lib/pgarchive/backlog/entries -name data.age | grep -q .")
  '';
}
