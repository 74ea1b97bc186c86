# NixOS VM test (flake check "vm"): PostgreSQL, two Garage S3 servers (one
# on each node; nixpkgs maintains Garage and its NixOS module) behind an
# rclone union, keys generated in the VM (no sops), metrics, prune, the
# status check, notifications to a small webhook listener, the backlog; and a
# verifier host that runs only the drill and the status check against the
# same remote; continuous WAL archiving and a point-in-time restore. Needs a Nix host with KVM; tests/nspawn and tests/nix mirror it
# under real systemd where Nix is unavailable.
{ pkgs, module }:

let
  signer = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPzwqLCBOKwYqZDj2BXCl8ooh7X6KxfFgPtR3BL1XCfq root@db1";

  # One single-node Garage per VM: garage-a on machine, garage-b on the
  # verifier, so stopping one leaves the other. Its S3 keys are made at test
  # time and written into rclone.conf there.
  garage = {
    services.garage = {
      enable = true;
      package = pkgs.garage_2;
      settings = {
        replication_factor = 1;
        rpc_bind_addr = "[::]:3901";
        rpc_public_addr = "127.0.0.1:3901";
        rpc_secret = "5c1915fa04d0b6739675c61bf5907eb0fe3d9c69850c83820f51b4d25d13868c";
        s3_api = {
          s3_region = "garage";
          api_bind_addr = "[::]:3900";
          root_domain = ".s3.garage";
        };
      };
    };
    networking.firewall.allowedTCPPorts = [ 3900 ];
    # Garage wants at least 1 GiB free for its data.
    virtualisation.diskSize = 2048;
  };

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

in
pkgs.testers.runNixOSTest {
  name = "pgarchive";

  nodes.machine = {
    imports = [ module garage ];
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
      # archive_command = pgarchive wal-push, and pgarchive-basebackup.
      wal.enable = true;
      # The rules as a file of services.prometheus.ruleFiles, which NixOS
      # checks with promtool when it builds the configuration.
      alerts.enable = true;
    };
    services.prometheus = {
      enable = true;
      scrapeConfigs = [{ job_name = "node"; static_configs = [{ targets = [ "127.0.0.1:9100" ]; }]; }];
      exporters.node = {
        enable = true;
        enabledCollectors = [ "textfile" ];
        extraFlags = [ "--collector.textfile.directory=/var/lib/prometheus-node-exporter-text" ];
      };
    };

    systemd.services.webhook-listener = {
      wantedBy = [ "multi-user.target" ];
      serviceConfig = {
        ExecStart = "${pkgs.python3}/bin/python3 ${webhookListener}";
        StateDirectory = "webhook";
      };
    };

  };

  # A host that only checks the archives: no PostgreSQL server, no
  # postgresqlBackup, no archive key; the drill brings its own PostgreSQL.
  nodes.verifier = {
    imports = [ module garage ];
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
      # Rewritten after every status run; served by nginx behind a password.
      report.enable = true;
    };
    services.nginx = {
      enable = true;
      virtualHosts.localhost = {
        root = "/var/lib/pgarchive-report";
        basicAuth.admin = "vm-test-only";
      };
    };
  };

  testScript = { nodes, ... }: let pgBin = "${nodes.machine.services.postgresql.package}/bin"; in ''
    import re

    rc = "rclone --config /run/keys/pgarchive/rclone.conf"

    def garage_bucket(node):
        # A single-node layout, the bucket and a key allowed to use it;
        # returns (key id, secret).
        node.wait_for_unit("garage.service")
        node.wait_for_open_port(3900)
        node_id = node.succeed("garage node id -q").strip().split("@")[0]
        node.succeed(f"garage layout assign -z vm -c 1G {node_id}", "garage layout apply --version 1")
        node.succeed("garage bucket create pgarchive")
        out = node.succeed("garage key create pgarchive-test")
        key_id = re.search(r"Key ID: (\S+)", out).group(1)
        secret = re.search(r"Secret key: (\S+)", out).group(1)
        node.succeed("garage bucket allow --read --write --owner pgarchive --key pgarchive-test")
        return key_id, secret

    def rclone_conf(a_host, b_host):
        section = lambda name, host, key: (
            f"[{name}]\ntype = s3\nprovider = Other\nendpoint = http://{host}:3900\n"
            f"access_key_id = {key[0]}\nsecret_access_key = {key[1]}\nregion = garage\nforce_path_style = true\n\n"
        )
        return (
            section("garage-a", a_host, keys["a"]) + section("garage-b", b_host, keys["b"])
            + "[archive-target-database]\ntype = union\nupstreams = garage-a:pgarchive garage-b:pgarchive\n"
            + "create_policy = all\naction_policy = all\nsearch_policy = ff\n"
        )

    def write_conf(node, text):
        node.succeed("install -d -m 0700 /run/keys/pgarchive")
        node.succeed(f"cat > /run/keys/pgarchive/rclone.conf << 'EOF'\n{text}EOF", "chmod 0600 /run/keys/pgarchive/rclone.conf")

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

    start_all()
    machine.wait_for_unit("multi-user.target")
    verifier.wait_for_unit("multi-user.target")
    keys = {"a": garage_bucket(machine), "b": garage_bucket(verifier)}
    write_conf(machine, rclone_conf("127.0.0.1", "verifier"))
    machine.succeed(
        "age-keygen -o /run/keys/pgarchive/identity",
        "echo http://127.0.0.1:8099/hook > /run/keys/pgarchive/webhook-url",
    )
    machine.wait_until_succeeds("sudo -u postgres psql -d db1 -c 'select 1'")
    machine.succeed(
        "sudo -u postgres psql -d db1 -c \"create table t (v text); insert into t values ('pgarchive-marker')\""
    )

    with subtest("the backup unit dumps, encrypts and uploads to both upstreams"):
        machine.succeed("systemctl start postgresqlBackup-db1.service")
        for upstream in ["garage-a", "garage-b"]:
            assert "pgarchive-marker" in decrypt_latest(upstream)
        machine.succeed("journalctl -u postgresqlBackup-db1 -o verbose | grep -q PGARCHIVE_UPSTREAM=")
        machine.succeed("journalctl PGARCHIVE_DATABASE=db1 | grep -q .")

    with subtest("every manifest is signed, and stock ssh-keygen accepts the signature"):
        names = machine.succeed(f"{rc} lsf garage-a:pgarchive/vmtest/db1 --include '*.manifest.json'").split()
        latest = sorted(names)[-1]
        machine.succeed(
            f"{rc} cat garage-a:pgarchive/vmtest/db1/{latest} > /tmp/m.json",
            f"{rc} cat garage-a:pgarchive/vmtest/db1/{latest}.sig > /tmp/m.json.sig",
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
        write_conf(verifier, rclone_conf("machine", "127.0.0.1"))
        verifier.succeed(
            f"echo {identity} | base64 -d > /run/keys/pgarchive/identity",
            "chmod 0600 /run/keys/pgarchive/identity",
        )
        verifier.succeed("systemctl start pgarchive-drill.service")
        # One summary entry per database, with journald fields.
        verifier.succeed("journalctl PGARCHIVE_DATABASE=db1 PGARCHIVE_DRILL=passed | grep -q .")
        # initdb refuses root: the unit runs as a transient user.
        verifier.succeed("systemctl show -p DynamicUser pgarchive-drill.service | grep -qx DynamicUser=yes")
        # The status check needs no postgresqlBackup either.
        verifier.succeed("systemctl start pgarchive-status.service")

    with subtest("the report follows the status check and nginx serves it behind its password"):
        verifier.wait_until_succeeds("test -s /var/lib/pgarchive-report/index.html")
        verifier.succeed(
            "grep -q 'data-database=\"db1\"' /var/lib/pgarchive-report/index.html",
            "stat -c '%a' /var/lib/pgarchive-report/index.html | grep -qx 644",
            "systemctl show -p Result pgarchive-report.service | grep -qx Result=success",
        )
        verifier.wait_for_unit("nginx.service")
        verifier.succeed("curl -s -o /dev/null -w '%{http_code}' http://localhost/ | grep -qx 401")
        assert "db1" in verifier.succeed("curl -sf -u admin:vm-test-only http://localhost/index.html")

    with subtest("root's wrapper on the verifier lists, verifies and restores"):
        assert "db1_" in verifier.succeed("pgarchive list --database db1")
        verifier.succeed("pgarchive verify --database db1 --latest --deep")
        assert "pgarchive-marker" in verifier.succeed("pgarchive restore --database db1 --latest --output -")

    with subtest("Prometheus loads the rules and scrapes pgarchive's series"):
        machine.wait_for_unit("prometheus.service")
        machine.wait_until_succeeds(
            "curl -sf 'http://127.0.0.1:9090/api/v1/query?query=pgarchive_status_ok' | grep -q db1", timeout=120
        )
        assert "PgarchiveArchiveStale" in machine.succeed("curl -sf http://127.0.0.1:9090/api/v1/rules")

    with subtest("status, prune (dry run, then for real) and the summary"):
        machine.succeed("pgarchive status --database db1")
        machine.succeed("test -f /var/lib/prometheus-node-exporter-text/pgarchive-status.prom")
        assert len(archives("garage-a")) >= 2, archives("garage-a")
        plan = machine.succeed("pgarchive prune --dry-run --keep-last 1")
        assert "remove" in plan, plan
        assert len(archives("garage-a")) >= 2, "a dry run deleted archives"
        machine.succeed("systemctl start pgarchive-prune.service")
        for upstream in ["garage-a", "garage-b"]:
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
        verifier.succeed("systemctl stop garage.service")
        machine.fail("systemctl start postgresqlBackup-db1.service")
        machine.succeed("systemctl is-failed postgresqlBackup-db1.service")
        notice = webhook("failure", "postgresqlBackup-db1.service")[0]
        machine.succeed(f"grep -q '\"database\":\"db1\"' {notice}")
        machine.succeed("find /var/lib/pgarchive/backlog/entries -name data.age | grep -q .")
        machine.fail("pgarchive status --database db1")
        # The scheduled check fails too (garage-b UNLISTED) and says so.
        machine.fail("systemctl start pgarchive-status.service")
        notice = notice_of_last_run("failure", "pgarchive-status.service")[0]
        machine.succeed(f"grep -q '\"unit\":\"pgarchive-status.service\"' {notice}")
        status_ok("0")
        verifier.succeed("systemctl start garage.service")
        verifier.wait_for_open_port(3900)
        machine.succeed("pgarchive retry")
        machine.succeed("pgarchive status --database db1")
        machine.succeed("systemctl start pgarchive-status.service")
        status_ok("1")
        machine.fail("find /var/lib/pgarchive/backlog/entries -name data.age | grep -q .")

    with subtest("WAL archiving, a base backup and a point-in-time restore"):
        machine.succeed("systemctl start pgarchive-basebackup.service")
        machine.succeed("sudo -u postgres psql -d db1 -c 'create table pitr as select generate_series(1, 500) n'")
        machine.succeed("sudo -u postgres psql -c 'select pg_switch_wal()'")
        machine.wait_until_succeeds(
            "sudo -u postgres psql -tAc 'select failed_count = 0 and last_archived_wal is not null from pg_stat_archiver' | grep -qx t"
        )
        machine.succeed("pgarchive list --wal | grep -q 'recovery window: from'")
        # restore_command runs as postgres: it gets copies of the secrets.
        machine.succeed(
            "install -d -m 0700 -o postgres /run/pgrestore"
            " && install -m 0400 -o postgres /run/keys/pgarchive/rclone.conf /run/keys/pgarchive/identity /run/pgrestore/"
        )
        machine.succeed(
            "sudo -u postgres pgarchive --rclone-config /run/pgrestore/rclone.conf restore-cluster --latest"
            " --target-dir /var/lib/postgresql/pitr -i /run/pgrestore/identity"
        )
        machine.succeed("sudo -u postgres ${pgBin}/pg_verifybackup -n /var/lib/postgresql/pitr")
        machine.succeed(
            "sudo -u postgres ${pgBin}/pg_ctl -D /var/lib/postgresql/pitr -l /tmp/pitr.log"
            " -o '-p 5433 -c archive_mode=off' -w -t 300 start"
        )
        machine.wait_until_succeeds("sudo -u postgres psql -p 5433 -tAc 'select pg_is_in_recovery()' | grep -qx f")
        machine.succeed("sudo -u postgres psql -p 5433 -d db1 -tAc 'select count(*) from pitr' | grep -qx 500")
        machine.succeed("sudo -u postgres ${pgBin}/pg_ctl -D /var/lib/postgresql/pitr -m fast stop")
  '';
}
