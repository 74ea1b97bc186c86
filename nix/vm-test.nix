# NixOS VM test (flake check "vm"): PostgreSQL, two MinIO servers behind an
# rclone union, keys generated in the VM (no sops); and a verifier host that
# runs only services.pgarchive.drill against the same remote. Needs a Nix host
# with KVM; tests/nspawn mirrors the archive half under real systemd where
# Nix is unavailable.
{ pkgs, module }:

let
  minioUser = "pgarchive-test";
  minioPassword = "pgarchive-test-secret";

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
    services.pgarchive = {
      enable = true;
      identityFile = "/run/keys/pgarchive/identity";
      rcloneConfigFile = "/run/keys/pgarchive/rclone.conf";
      prefix = "vmtest";
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
      drill = {
        enable = true;
        identityFile = "/run/keys/pgarchive/identity";
        databases = [ "db1" ];
        checks.db1 = [
          { query = "select count(*) from t"; expect = ">= 1"; }
          { query = "select v from t order by v limit 1"; expect = "pgarchive-marker"; }
        ];
      };
    };
  };

  testScript = ''
    rc = "rclone --config /run/keys/pgarchive/rclone.conf"

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

    with subtest("root's wrapper on the verifier lists, verifies and restores"):
        assert "db1_" in verifier.succeed("pgarchive list --database db1")
        verifier.succeed("pgarchive verify --database db1 --latest --deep")
        assert "pgarchive-marker" in verifier.succeed("pgarchive restore --database db1 --latest --output -")

    with subtest("a failing check fails the drill"):
        machine.succeed("sudo -u postgres psql -d db1 -c 'delete from t'")
        machine.succeed("systemctl start postgresqlBackup-db1.service")
        verifier.fail("systemctl start pgarchive-drill.service")
        verifier.succeed("systemctl is-failed pgarchive-drill.service")
        verifier.succeed("journalctl PGARCHIVE_DATABASE=db1 PGARCHIVE_DRILL=failed | grep -q .")

    with subtest("a failed upload fails the unit"):
        machine.succeed("systemctl stop minio-b.service")
        machine.fail("systemctl start postgresqlBackup-db1.service")
        machine.succeed("systemctl is-failed postgresqlBackup-db1.service")
  '';
}
