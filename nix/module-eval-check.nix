# Flake check: evaluate the module inside a real NixOS configuration and
# inspect the unit files systemd would get. tests/nix covers the same ground
# with stubs where no nixpkgs is available; this is the real-nixpkgs half.
{ nixpkgs, pkgs, system, module }:

let
  inherit (nixpkgs) lib;

  evalWith = extra: nixpkgs.lib.nixosSystem {
    inherit system;
    modules = [
      module
      {
        boot.isContainer = true;
        system.stateVersion = "25.11";
        services.postgresql.enable = true;
      }
      extra
    ];
  };

  failedAssertions = sys: map (a: a.message) (lib.filter (a: !a.assertion) sys.config.assertions);

  perDb = evalWith {
    services.postgresqlBackup = { enable = true; databases = [ "db1" "db2" ]; compression = "zstd"; };
    services.pgarchive = {
      enable = true;
      recipients = [ "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p" ];
      rcloneConfigFile = "/run/secrets/rclone.conf";
      databases = [ "db1" ];
    };
  };

  all = evalWith {
    services.postgresqlBackup = { enable = true; compression = "none"; };
    services.pgarchive = {
      enable = true;
      identityFile = "/run/secrets/identity";
      rcloneConfigFile = "/run/secrets/rclone.conf";
    };
  };

  twoKeys = evalWith {
    services.postgresqlBackup = { enable = true; databases = [ "db1" ]; };
    services.pgarchive = {
      enable = true;
      recipients = [ "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p" ];
      passphraseFile = "${pkgs.writeText "oops" "secret"}";
    };
  };

  unitFile = sys: name: "${sys.config.systemd.units."${name}.service".unit}/${name}.service";

  expectFailures = sys: needles:
    let failed = lib.concatStringsSep "\n" (failedAssertions sys);
    in lib.all (n: lib.hasInfix n failed) needles
       || throw "expected assertion failures mentioning ${toString needles}, got:\n${failed}";
in
assert failedAssertions perDb == [ ];
assert failedAssertions all == [ ];
assert expectFailures twoKeys [ "exactly one key source" "inside the world-readable Nix store" ];
assert !(perDb.config.systemd.services ? "postgresqlBackup-db2" && perDb.config.systemd.services."postgresqlBackup-db2".serviceConfig ? ExecStartPost);
pkgs.runCommand "pgarchive-module-eval" { } ''
  set -eu
  db1=${unitFile perDb "postgresqlBackup-db1"}
  grep -E '^ExecStartPost=/nix/store/[^ ]+/bin/pgarchive --config /nix/store/[^ ]+-pgarchive.json archive --database db1 --file /var/backup/postgresql/db1.sql.zstd$' "$db1"
  grep -Fx 'LoadCredential=rclone.conf:/run/secrets/rclone.conf' "$db1"
  grep -E '^(Wants|After)=.*network-online.target' "$db1"
  grep -Fx 'User=postgres' "$db1"
  if grep -q pgarchive ${unitFile perDb "postgresqlBackup-db2"}; then
    echo "postgresqlBackup-db2 is not in services.pgarchive.databases but got pgarchive" >&2
    exit 1
  fi

  allUnit=${unitFile all "postgresqlBackup"}
  grep -E '^ExecStartPost=.* archive --database all --file /var/backup/postgresql/all.sql$' "$allUnit"
  grep -Fx 'LoadCredential=identity:/run/secrets/identity' "$allUnit"
  grep -Fx 'LoadCredential=rclone.conf:/run/secrets/rclone.conf' "$allUnit"
  grep -F '"identity-file":"$CREDENTIALS_DIRECTORY/identity"' ${all.config.services.pgarchive.configFile}
  touch "$out"
''
