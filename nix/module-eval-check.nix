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
      }
      extra
    ];
  };

  # The archiving host's public signing key, as readers trust it.
  signers = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPzwqLCBOKwYqZDj2BXCl8ooh7X6KxfFgPtR3BL1XCfq root@db1" ];

  failedAssertions = sys: map (a: a.message) (lib.filter (a: !a.assertion) sys.config.assertions);

  # postgresqlBackup dumps the local server; a verifier host has none.
  dbHost = { services.postgresql.enable = true; };

  perDb = evalWith {
    imports = [ dbHost ];
    services.postgresqlBackup = { enable = true; databases = [ "db1" "db2" ]; compression = "zstd"; };
    services.pgarchive = {
      enable = true;
      recipients = [ "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p" ];
      rcloneConfigFile = "/run/secrets/rclone.conf";
      databases = [ "db1" ];
    };
  };

  all = evalWith {
    imports = [ dbHost ];
    services.postgresqlBackup = { enable = true; compression = "none"; };
    services.pgarchive = {
      enable = true;
      identityFile = "/run/secrets/identity";
      rcloneConfigFile = "/run/secrets/rclone.conf";
    };
  };

  twoKeys = evalWith {
    imports = [ dbHost ];
    services.postgresqlBackup = { enable = true; databases = [ "db1" ]; };
    services.pgarchive = {
      enable = true;
      recipients = [ "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p" ];
      passphraseFile = "/run/secrets/passphrase";
    };
  };

  # A secret in the world-readable store is refused by the option's type.
  storeSecret = evalWith {
    imports = [ dbHost ];
    services.postgresqlBackup = { enable = true; databases = [ "db1" ]; };
    services.pgarchive = {
      enable = true;
      passphraseFile = "${pkgs.writeText "oops" "secret"}";
    };
  };

  # The module imported twice (nixosModules.default and .pgarchive), and a
  # user's own scalar additions to a unit merging with the module's lists,
  # as NixOS merges unit options.
  twice = evalWith {
    imports = [ module dbHost ];
    services.postgresqlBackup = { enable = true; databases = [ "db1" ]; };
    services.pgarchive = {
      enable = true;
      recipients = [ "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p" ];
      rcloneConfigFile = "/run/secrets/rclone.conf";
      prune = { enable = true; keep.daily = 7; };
      trustedSigners = signers;
    };
    systemd.services.pgarchive-prune.serviceConfig = { LoadCredential = "extra:/run/secrets/extra"; Environment = "HTTPS_PROXY=http://proxy:3128"; };
  };

  # Only the drill: no PostgreSQL server, no postgresqlBackup, no archive key.
  verifier = evalWith {
    services.pgarchive = {
      trustedSigners = signers;
      rcloneConfigFile = "/run/secrets/rclone.conf";
      prefix = "hosts/db1";
      drill = {
        enable = true;
        identityFile = "/run/secrets/identity";
        databases = [ "db1" ];
        checks.db1 = [ { query = "select count(*) from t"; expect = ">= 1"; } ];
      };
    };
  };

  # Archive and drill on the database host; the drill uses the server's package.
  both = evalWith {
    imports = [ dbHost ];
    services.postgresqlBackup = { enable = true; databases = [ "db1" ]; };
    services.pgarchive = {
      enable = true;
      recipients = [ "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p" ];
      rcloneConfigFile = "/run/secrets/rclone.conf";
      drill = { enable = true; identityFile = "/run/secrets/identity"; maxAge = "192h"; };
      signingKeyFile = "/etc/ssh/ssh_host_ed25519_key";
      trustedSigners = signers;
    };
  };

  drillNoKey = evalWith {
    services.pgarchive = { rcloneConfigFile = "/run/secrets/rclone.conf"; drill.enable = true; trustedSigners = signers; };
  };

  drillWrongKind = evalWith {
    imports = [ dbHost ];
    services.postgresqlBackup = { enable = true; databases = [ "db1" ]; };
    services.pgarchive = {
      enable = true;
      recipients = [ "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p" ];
      rcloneConfigFile = "/run/secrets/rclone.conf";
      drill = { enable = true; passphraseFile = "/run/secrets/passphrase"; };
      trustedSigners = signers;
    };
  };

  # Backlog, healing, metrics, prune with its own rclone.conf, notifications.
  lifecycle = evalWith {
    imports = [ dbHost ];
    services.postgresqlBackup = { enable = true; databases = [ "db1" ]; };
    services.pgarchive = {
      enable = true;
      recipients = [ "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p" ];
      rcloneConfigFile = "/run/secrets/rclone.conf";
      healAfterArchive = true;
      trustedSigners = signers;
      metrics.textfileDirectory = "/var/lib/prometheus-node-exporter-text";
      prune = {
        enable = true;
        rcloneConfigFile = "/run/secrets/rclone-prune.conf";
        keep = { daily = 7; weekly = 5; monthly = 12; yearly = -1; };
      };
      notify = {
        onFailure = true;
        onSuccess = true;
        webhookUrlFile = "/run/secrets/webhook-url";
        summary.enable = true;
      };
      status = { enable = true; databases = [ "db1" ]; };
    };
  };

  # A verifier that only runs the status check, with the drill's read-only
  # rclone.conf: no PostgreSQL, no postgresqlBackup, no key, no metrics.
  statusOnly = evalWith {
    services.pgarchive = {
      prefix = "hosts/db1";
      drill.rcloneConfigFile = "/run/secrets/rclone-ro.conf";
      status.enable = true;
      trustedSigners = signers;
    };
  };


  # A host that only prunes: no PostgreSQL, no postgresqlBackup, no key.
  pruneOnly = evalWith {
    services.pgarchive.trustedSigners = signers;
    services.pgarchive.prune = {
      enable = true;
      rcloneConfigFile = "/run/secrets/rclone-prune.conf";
      keep.within = "1y6m";
    };
  };

  # Readers without trusted signers: refused, unless the risk is accepted.
  unsignedReaders = evalWith {
    services.pgarchive = {
      rcloneConfigFile = "/run/secrets/rclone.conf";
      drill = { enable = true; identityFile = "/run/secrets/identity"; };
      status.enable = true;
    };
  };
  unsignedAccepted = evalWith {
    services.pgarchive = {
      rcloneConfigFile = "/run/secrets/rclone.conf";
      drill = { enable = true; identityFile = "/run/secrets/identity"; };
      allowUnsigned = true;
    };
  };



  notifyTwoHooks = evalWith {
    imports = [ dbHost ];
    services.postgresqlBackup = { enable = true; databases = [ "db1" ]; };
    services.pgarchive = {
      enable = true;
      recipients = [ "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p" ];
      rcloneConfigFile = "/run/secrets/rclone.conf";
      notify = { onFailure = true; webhookUrl = "https://hooks.example.com/x"; webhookUrlFile = "/run/secrets/webhook-url"; };
    };
  };

  unitFile = sys: name: "${sys.config.systemd.units."${name}.service".unit}/${name}.service";
  timerFile = sys: name: "${sys.config.systemd.units."${name}.timer".unit}/${name}.timer";
  wrapperOf = sys: "${lib.findFirst (p: p.name or "" == "pgarchive") (throw "no pgarchive wrapper") sys.config.environment.systemPackages}/bin/pgarchive";

  expectFailures = sys: needles:
    let failed = lib.concatStringsSep "\n" (failedAssertions sys);
    in lib.all (n: lib.hasInfix n failed) needles
       || throw "expected assertion failures mentioning ${toString needles}, got:\n${failed}";
in
assert failedAssertions perDb == [ ];
assert failedAssertions all == [ ];
assert expectFailures twoKeys [ "exactly one key source" ];
# The type refuses the store path: forcing the option throws.
assert !(builtins.tryEval storeSecret.config.services.pgarchive.passphraseFile).success;
assert failedAssertions twice == [ ];
assert twice.config.systemd.services.pgarchive-prune.serviceConfig.LoadCredential == [ "rclone.conf:/run/secrets/rclone.conf" "extra:/run/secrets/extra" ]
  || twice.config.systemd.services.pgarchive-prune.serviceConfig.LoadCredential == [ "extra:/run/secrets/extra" "rclone.conf:/run/secrets/rclone.conf" ];
assert !(perDb.config.systemd.services ? "postgresqlBackup-db2" && perDb.config.systemd.services."postgresqlBackup-db2".serviceConfig ? ExecStartPost);
assert failedAssertions verifier == [ ];
assert failedAssertions both == [ ];
assert !(verifier.config.systemd.services ? postgresqlBackup || verifier.config.systemd.services ? "postgresqlBackup-db1");
assert !(perDb.config.systemd.services ? pgarchive-drill);
assert expectFailures drillNoKey [ "services.pgarchive.drill: no decryption key" ];
assert expectFailures drillWrongKind [ "so the drill needs drill.identityFile" ];
assert failedAssertions lifecycle == [ ];
assert failedAssertions pruneOnly == [ ];
assert expectFailures unsignedReaders [ "drill, status would trust any archive in the store" "allowUnsigned" ];
assert failedAssertions unsignedAccepted == [ ];
assert lib.elem "signing-key:/etc/ssh/ssh_host_ed25519_key" both.config.systemd.services."postgresqlBackup-db1".serviceConfig.LoadCredential;
assert (builtins.fromJSON both.config.services.pgarchive.configFile.env.json).signing-key == "$CREDENTIALS_DIRECTORY/signing-key";
assert (builtins.fromJSON both.config.services.pgarchive.drill.configFile.env.json).trusted-signers == signers;
assert expectFailures notifyTwoHooks [ "not both" ];
assert failedAssertions statusOnly == [ ];
assert !(perDb.config.systemd.services ? pgarchive-status || pruneOnly.config.systemd.timers ? pgarchive-status);
assert lib.sort lib.lessThan (lib.filter (lib.hasInfix "pgarchive") lifecycle.config.systemd.tmpfiles.rules) == [
  "d '/var/lib/pgarchive' 0750 postgres pgarchive - -"
  "d '/var/lib/prometheus-node-exporter-text' 2775 root pgarchive - -"
];
assert lifecycle.config.users.groups ? pgarchive;
assert !(pruneOnly.config.users.groups ? pgarchive);
assert !(perDb.config.systemd.services ? "pgarchive-notify-failure@" || perDb.config.systemd.services ? pgarchive-prune);
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

  drill=${unitFile verifier "pgarchive-drill"}
  grep -E '^ExecStart=/nix/store/[^ ]+/bin/pgarchive --config /nix/store/[^ ]+-pgarchive-drill.json drill$' "$drill"
  grep -Fx 'LoadCredential=rclone.conf:/run/secrets/rclone.conf' "$drill"
  grep -Fx 'LoadCredential=identity:/run/secrets/identity' "$drill"
  for d in DynamicUser=true ProtectSystem=strict PrivateTmp=true ProtectHome=true NoNewPrivileges=true PrivateDevices=true \
      'CapabilityBoundingSet=' 'SystemCallFilter=@system-service' 'RestrictAddressFamilies=AF_UNIX' 'RestrictAddressFamilies=AF_INET6' Type=oneshot; do
    grep -Fx "$d" "$drill"
  done
  grep -E '^(Wants|After)=.*network-online.target' "$drill"
  if grep -E '^(User|MemoryDenyWriteExecute)=' "$drill"; then
    echo "pgarchive-drill runs initdb, which needs a non-root user of its own and W^X off for JIT" >&2
    exit 1
  fi
  grep -F '"db1":[{"expect":">= 1","query":"select count(*) from t"}]' ${verifier.config.services.pgarchive.drill.checksFile}
  drillConf=${verifier.config.services.pgarchive.drill.configFile}
  grep -F '"prefix":"hosts/db1"' "$drillConf"
  grep -F '"identity-file":"$CREDENTIALS_DIRECTORY/identity"' "$drillConf"
  grep -E '"drill":[{]"checks-file":"/nix/store/[^"]+-pgarchive-drill-checks.json","database":[[]"db1"[]],"max-age":"26h"[}]' "$drillConf"
  grep -E '"pg-bin":"/nix/store/[^"]+-postgresql-[0-9.]+/bin"' "$drillConf"
  timer=${timerFile verifier "pgarchive-drill"}
  grep -Fx 'OnCalendar=*-*-* 06:00:00' "$timer"
  grep -Fx 'Persistent=true' "$timer"
  grep -E '^RandomizedDelaySec=' "$timer"
  wrapper=${wrapperOf verifier}
  grep -E -- '--config /nix/store/[^ ]+-pgarchive-root.json "[$]@"$' "$wrapper"
  rootConf=${verifier.config.services.pgarchive.rootConfigFile}
  grep -F '"identity-file":"/run/secrets/identity"' "$rootConf"
  grep -F '"rclone-config":"/run/secrets/rclone.conf"' "$rootConf"
  grep -E '"pg-bin":"/nix/store/[^"]+-postgresql-[0-9.]+/bin"' "$rootConf"

  grep -F '"pg-bin":"${both.config.services.postgresql.package}/bin"' ${both.config.services.pgarchive.drill.configFile}
  grep -F '"max-age":"192h"' ${both.config.services.pgarchive.drill.configFile}
  grep -E '^ExecStartPost=.* archive --database db1 ' ${unitFile both "postgresqlBackup-db1"}
  grep -F '"pg-bin":"${both.config.services.postgresql.package}/bin"' ${both.config.services.pgarchive.rootConfigFile}
  grep -F '"pg-bin":"${perDb.config.services.postgresql.package}/bin"' ${perDb.config.services.pgarchive.rootConfigFile}

  lcDb1=${unitFile lifecycle "postgresqlBackup-db1"}
  grep -E '^ExecStartPost=.* archive --database db1 --file /var/backup/postgresql/db1.sql.gz --heal$' "$lcDb1"
  grep -Fx 'OnFailure=pgarchive-notify-failure@%n.service' "$lcDb1"
  grep -Fx 'OnSuccess=pgarchive-notify-success@%n.service' "$lcDb1"
  grep -Fx 'SupplementaryGroups=pgarchive' "$lcDb1"
  grep -F '"state-dir":"/var/lib/pgarchive"' ${lifecycle.config.services.pgarchive.configFile}
  grep -F '"backlog-max-size":"10Gi"' ${lifecycle.config.services.pgarchive.configFile}
  grep -F '"metrics-dir":"/var/lib/prometheus-node-exporter-text"' ${lifecycle.config.services.pgarchive.configFile}

  prune=${unitFile lifecycle "pgarchive-prune"}
  grep -E '^ExecStart=/nix/store/[^ ]+/bin/pgarchive --config /nix/store/[^ ]+-pgarchive-prune.json prune$' "$prune"
  grep -F '"prune":{"keep-daily":7,"keep-monthly":12,"keep-weekly":5,"keep-yearly":-1}' ${lifecycle.config.services.pgarchive.prune.configFile}
  grep -Fx 'LoadCredential=rclone.conf:/run/secrets/rclone-prune.conf' "$prune"
  grep -Fx 'ReadWritePaths=/var/lib/prometheus-node-exporter-text' "$prune"
  grep -Fx 'OnFailure=pgarchive-notify-failure@%n.service' "$prune"
  for d in DynamicUser=true ProtectSystem=strict MemoryDenyWriteExecute=true SupplementaryGroups=pgarchive Type=oneshot; do
    grep -Fx "$d" "$prune"
  done
  grep -Fx 'OnCalendar=*-*-* 04:00:00' ${timerFile lifecycle "pgarchive-prune"}
  grep -F '"rclone-config":"$CREDENTIALS_DIRECTORY/rclone.conf"' ${lifecycle.config.services.pgarchive.prune.configFile}

  for event in failure success; do
    hook=${lifecycle.config.systemd.units."pgarchive-notify-failure@.service".unit}/pgarchive-notify-failure@.service
    [ "$event" = success ] && hook=${lifecycle.config.systemd.units."pgarchive-notify-success@.service".unit}/pgarchive-notify-success@.service
    grep -E "^ExecStart=/nix/store/[^ ]+/bin/pgarchive notify --event $event --webhook-url-file \"[$][$]CREDENTIALS_DIRECTORY/webhook-url\" --format slack --journal-lines 20 --unit %i$" "$hook"
    grep -Fx 'LoadCredential=webhook-url:/run/secrets/webhook-url' "$hook"
    grep -Fx 'SupplementaryGroups=systemd-journal' "$hook"
    # notify reads the journal with journalctl from PATH.
    grep -E '^Environment="PATH=.*-systemd-[^/]+/bin' "$hook"
    if grep -E '^On(Failure|Success)=' "$hook"; then
      echo "$hook reports on itself" >&2
      exit 1
    fi
  done

  summary=${unitFile lifecycle "pgarchive-notify-summary"}
  grep -E '^ExecStart=/nix/store/[^ ]+/bin/pgarchive --config /nix/store/[^ ]+-pgarchive-summary.json notify --event summary --webhook-url-file "[$][$]CREDENTIALS_DIRECTORY/webhook-url" --format slack$' "$summary"
  grep -Fx 'LoadCredential=rclone.conf:/run/secrets/rclone.conf' "$summary"
  grep -Fx 'SupplementaryGroups=pgarchive' "$summary"
  grep -Fx 'OnCalendar=*-*-* 08:00:00' ${timerFile lifecycle "pgarchive-notify-summary"}
  grep -F '"state-dir":"/var/lib/pgarchive"' ${lifecycle.config.services.pgarchive.notify.summary.configFile}

  status=${unitFile lifecycle "pgarchive-status"}
  grep -E '^ExecStart=/nix/store/[^ ]+/bin/pgarchive --config /nix/store/[^ ]+-pgarchive-status.json status$' "$status"
  grep -F '"status":{"database":["db1"],"max-age":"26h"}' ${lifecycle.config.services.pgarchive.status.configFile}
  grep -Fx 'LoadCredential=rclone.conf:/run/secrets/rclone.conf' "$status"
  grep -Fx 'ReadWritePaths=/var/lib/prometheus-node-exporter-text' "$status"
  grep -Fx 'OnFailure=pgarchive-notify-failure@%n.service' "$status"
  grep -Fx 'OnSuccess=pgarchive-notify-success@%n.service' "$status"
  for d in DynamicUser=true ProtectSystem=strict PrivateTmp=true NoNewPrivileges=true 'CapabilityBoundingSet=' \
      'SystemCallFilter=@system-service' MemoryDenyWriteExecute=true SupplementaryGroups=pgarchive Type=oneshot; do
    grep -Fx "$d" "$status"
  done
  grep -E '^(Wants|After)=.*network-online.target' "$status"
  statusTimer=${timerFile lifecycle "pgarchive-status"}
  grep -Fx 'OnCalendar=hourly' "$statusTimer"
  grep -Fx 'Persistent=true' "$statusTimer"
  grep -Fx 'RandomizedDelaySec=5min' "$statusTimer"
  grep -F '"metrics-dir":"/var/lib/prometheus-node-exporter-text"' ${lifecycle.config.services.pgarchive.status.configFile}
  grep -F '"rclone-config":"$CREDENTIALS_DIRECTORY/rclone.conf"' ${lifecycle.config.services.pgarchive.status.configFile}
  if grep -E 'recipients|identity|state-dir' ${lifecycle.config.services.pgarchive.status.configFile}; then
    echo "the status settings name a key or the backlog" >&2
    exit 1
  fi

  statusOnlyUnit=${unitFile statusOnly "pgarchive-status"}
  grep -E -- ' status$' "$statusOnlyUnit"
  grep -Fx 'LoadCredential=rclone.conf:/run/secrets/rclone-ro.conf' "$statusOnlyUnit"
  if grep -E '^(SupplementaryGroups|ReadWritePaths|OnFailure|OnSuccess)=' "$statusOnlyUnit"; then
    echo "pgarchive-status without metrics or notify got a group, a writable path or a hook" >&2
    exit 1
  fi
  grep -F '"prefix":"hosts/db1"' ${statusOnly.config.services.pgarchive.status.configFile}
  grep -F '"rclone-config":"/run/secrets/rclone-ro.conf"' ${statusOnly.config.services.pgarchive.rootConfigFile}

  grep -F '"rclone-config":"/run/secrets/rclone-prune.conf"' ${lifecycle.config.services.pgarchive.rootConfigFile}
  pruneOnlyUnit=${unitFile pruneOnly "pgarchive-prune"}
  grep -E -- ' prune$' "$pruneOnlyUnit"
  grep -F '"keep-within":"1y6m"' ${pruneOnly.config.services.pgarchive.prune.configFile}
  grep -F '"rclone-config":"/run/secrets/rclone-prune.conf"' ${pruneOnly.config.services.pgarchive.rootConfigFile}
  twicePrune=${unitFile twice "pgarchive-prune"}
  grep -Fx 'LoadCredential=extra:/run/secrets/extra' "$twicePrune"
  grep -Fx 'LoadCredential=rclone.conf:/run/secrets/rclone.conf' "$twicePrune"
  touch "$out"
''
