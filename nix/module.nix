# services.pgarchive: after each dump of services.postgresqlBackup, encrypt it
# with age and upload it to every upstream of an rclone remote; and
# services.pgarchive.drill: on a schedule, restore the newest archives into a
# throwaway PostgreSQL and run checks against them. Either half can be enabled
# without the other (a verifier host runs only the drill). lifecycle.nix adds
# the backlog, metrics and prune; notify.nix the webhooks; status.nix the
# scheduled monitoring check.
#
# flake.nix applies the first argument, so that the package option can default
# to the flake's own build and the overlay stays optional.
{ flakePackages ? { } }:

{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption types;

  cfg = config.services.pgarchive;
  drill = cfg.drill;
  prune = cfg.prune;
  status = cfg.status;
  backupCfg = config.services.postgresqlBackup;
  pgCfg = config.services.postgresql;
  wiring = import ./wiring.nix;
  system = pkgs.stdenv.hostPlatform.system;
  inherit (import ./common.nix { inherit lib pkgs cfg; }) program checkedSettings storeAssertion isDuration;

  # The archive units' settings: remote, dumps, the encryption key, the
  # backlog and metrics.
  archiveConfigFile = checkedSettings "pgarchive.json" (wiring.settings { inherit cfg; backup = backupCfg; });

  # The read side's settings: where the archives are, and nothing about keys,
  # so that the drill never sees the archive units' credential paths.
  drillConfigFile = checkedSettings "pgarchive-read.json" (wiring.readSettings {
    inherit (cfg) remote prefix trustedSigners;
    inherit (drill) rcloneConfigFile;
    metricsDir = cfg.metrics.textfileDirectory;
  });

  # On a host that archives nothing, root's wrapper reads the archives as
  # one of its units does: the drill, else prune, else the status check.
  readUnit =
    if drill.enable || !(prune.enable || status.enable) then { configFile = drillConfigFile; inherit (drill) rcloneConfigFile; }
    else if prune.enable then { inherit (prune) configFile rcloneConfigFile; }
    else { inherit (status) configFile rcloneConfigFile; };

  # What root's wrapper reads: the archive settings where this host archives,
  # else the read-side settings of its unit.
  configFile = if cfg.enable then archiveConfigFile else readUnit.configFile;

  checksFile =
    if drill.checks == { } then null
    else pkgs.writeText "pgarchive-drill-checks.json" (builtins.toJSON drill.checks);

  # Where restore --into finds psql (and drill, were root allowed to run it).
  rootPgBin =
    if drill.enable then "${drill.postgresqlPackage}/bin"
    else if pgCfg.enable then "${pgCfg.package}/bin"
    else null;

  # A key for verify --deep and restore: the archive units' own identity or
  # passphrase decrypts what they wrote, so it needs no default; otherwise
  # the drill's key. With public-key archives the drill's identity is one of
  # the recipients, so a manual `archive` that also encrypts to it (the
  # variable is global) adds no new reader.
  archiveKeyDecrypts = cfg.enable && (cfg.identityFile != null || cfg.passphraseFile != null);
  rootDefaultKey =
    if !drill.enable || archiveKeyDecrypts then null
    else if drill.identityFile != null then { var = "PGARCHIVE_IDENTITY_FILE"; path = drill.identityFile; }
    else if drill.passphraseFile != null then { var = "PGARCHIVE_PASSPHRASE_FILE"; path = drill.passphraseFile; }
    else null;

  rootFlags =
    if cfg.enable then wiring.rootFlags cfg
    else wiring.readRootFlags readUnit.rcloneConfigFile;

  wrapper = import ./wrapper.nix {
    inherit lib pkgs program configFile rootFlags;
    inherit (cfg) extraArgs environmentFile;
    pgBin = rootPgBin;
    defaultKey = rootDefaultKey;
    pruneRcloneConfigFile = if prune.enable then prune.rcloneConfigFile else null;
  };

  credentials = wiring.credentials cfg;

  unitFor = db: {
    name = wiring.unitName backupCfg db;
    value = {
      # rclone needs the network; a timer firing at boot must not race it.
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      serviceConfig = {
        ExecStartPost = [
          (wiring.execStartPost {
            inherit program db;
            configFile = archiveConfigFile;
            inherit (cfg) extraArgs;
            backup = backupCfg;
            heal = cfg.healAfterArchive;
          })
        ];
      }
      // lib.optionalAttrs (credentials != [ ]) { LoadCredential = credentials; }
      // lib.optionalAttrs (cfg.environmentFile != null) { EnvironmentFile = [ cfg.environmentFile ]; };
    };
  };

  drillCredentials = wiring.drillCredentials drill;

  drillUnit = {
    description = "pgarchive drill: restore the newest archives into a throwaway PostgreSQL and check them";
    documentation = [ "https://github.com/pgarchive/pgarchive#nixos" ];
    wants = [ "network-online.target" ];
    after = [ "network-online.target" ];
    serviceConfig = {
      Type = "oneshot";
      ExecStart = wiring.drillExecStart {
        inherit program checksFile drill;
        configFile = drillConfigFile;
        inherit (cfg) extraArgs;
        pgBin = "${drill.postgresqlPackage}/bin";
      };
      LoadCredential = drillCredentials;
    }
    # initdb refuses root: a transient user (DynamicUser) owns the throwaway
    # cluster, which lives in the unit's private /tmp and goes with it; the
    # cluster listens on a socket (AF_UNIX), rclone reaches the remote over IP.
    // import ./hardening.nix
    // {
      # No MemoryDenyWriteExecute: PostgreSQL's JIT writes code at run time.
      # A drill competes with the production server on an archive host.
      Nice = lib.mkDefault 10;
      IOSchedulingClass = lib.mkDefault "best-effort";
      IOSchedulingPriority = lib.mkDefault 7;
    }
    // lib.optionalAttrs (cfg.environmentFile != null) { EnvironmentFile = [ cfg.environmentFile ]; };
  };

  secretFileOption = what: example: mkOption {
    type = types.nullOr types.str;
    default = null;
    inherit example;
    description = ''
      ${what}

      A string path read at run time, e.g. from sops-nix or agenix; it must
      not be in the Nix store. The backup unit receives it with
      `LoadCredential=`, so only the unit's `postgres` user can read it, and
      only while the unit runs.
    '';
  };

  drillSecretOption = what: example: mkOption {
    type = types.nullOr types.str;
    default = null;
    inherit example;
    description = ''
      ${what}

      A string path read at run time, e.g. from sops-nix or agenix; it must
      not be in the Nix store. The drill unit receives it with
      `LoadCredential=`, readable only by its transient user while it runs.
    '';
  };

  secretPathOptions = map (s: s.option) wiring.secrets ++ [ "environmentFile" ];

  keySources = wiring.keySources cfg;
  drillKeySources = wiring.drillKeySources drill;
  dumped = wiring.dumpedDatabases backupCfg;
  notDumped = lib.filter (db: !(lib.elem db dumped)) cfg.databases;
  uncheckedDatabases = lib.filter (db: db != "*" && !(lib.elem db drill.databases)) (lib.attrNames drill.checks);

  checkType = types.submodule {
    options = {
      query = mkOption {
        type = types.str;
        example = "select count(*) from registrations";
        description = "SQL run in the restored database; its first column of its first row is compared.";
      };
      expect = mkOption {
        type = types.str;
        example = ">= 1000";
        description = "`>= N`, `> N`, `<= N`, `< N`, `= V`, `!= V`, or a bare value (equality).";
      };
    };
  };
in
{
  options.services.pgarchive = {
    enable = lib.mkEnableOption ''
      pgarchive, which encrypts every dump of
      {option}`services.postgresqlBackup` with age and uploads it to every
      upstream of an rclone remote, failing the backup unit if any upload fails
    '';

    package = mkOption {
      type = types.package;
      default = flakePackages.${system}.default
        or (throw "services.pgarchive.package: the pgarchive flake has no package for ${system}; set services.pgarchive.package");
      defaultText = lib.literalExpression "pgarchive.packages.\${pkgs.stdenv.hostPlatform.system}.default";
      description = "The pgarchive package to use.";
    };

    recipients = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p" ];
      description = ''
        Public keys to encrypt to: `age1…` (X25519), `age1pq1…`
        (post-quantum), `ssh-ed25519 …` or `ssh-rsa …`. Not secret; they are
        written to the Nix store.
      '';
    };

    recipientsFile = secretFileOption "File of recipients, one per line, `#` comments (age's `-R` format)." "/run/secrets/pgarchive/recipients";
    identityFile = secretFileOption "age or SSH identity whose public half the dumps are encrypted to (as `age -e -i`)." "/run/agenix/pgarchive-identity";
    passphraseFile = secretFileOption "File whose first line is the passphrase to encrypt with (age scrypt)." "/run/secrets/pgarchive/passphrase";
    rcloneConfigFile = secretFileOption "rclone.conf defining {option}`services.pgarchive.remote` and its upstreams." "/run/secrets/pgarchive/rclone.conf";

    remote = mkOption {
      type = types.str;
      default = "archive-target-database:";
      example = "offsite:";
      description = ''
        rclone remote the archives go to. A union remote is written member by
        member, and the unit fails unless every member got a verified copy.
      '';
    };

    prefix = mkOption {
      type = types.str;
      default = "";
      example = "hosts/db1";
      description = "Folder inside the remote; archives are stored as `<prefix>/<db>/<db>_<time>.sql<suffix>.age`.";
    };

    databases = mkOption {
      type = types.listOf types.str;
      default = dumped;
      defaultText = lib.literalExpression ''
        if config.services.postgresqlBackup.backupAll then [ "all" ]
        else config.services.postgresqlBackup.databases
      '';
      example = [ "db1" ];
      description = ''
        Databases whose dumps are archived: every database that
        {option}`services.postgresqlBackup` dumps (`all` when
        {option}`services.postgresqlBackup.backupAll` is set), or a subset.
      '';
    };

    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "--verbose" ];
      description = "Extra global arguments, placed before the `archive` subcommand.";
    };

    environmentFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/run/secrets/pgarchive/env";
      description = ''
        systemd `EnvironmentFile=` for the backup units and every pgarchive
        unit (drill, prune, status, notify; and sourced by the root
        wrapper), e.g. for `RCLONE_CONFIG_<REMOTE>_<KEY>` overrides,
        `HTTPS_PROXY` or `PGARCHIVE_*` settings. It is applied to the whole backup unit,
        `pg_dump` included; its rclone variables beat every unit's
        rclone.conf, prune's own included. It must not be in the Nix store.
      '';
    };

    configFile = mkOption {
      type = types.package;
      readOnly = true;
      internal = true;
      default = configFile;
      description = "The generated, build-time validated settings file (root's wrapper reads it), for units of your own.";
    };

    drill = {
      enable = lib.mkEnableOption ''
        a scheduled restore drill: the newest archive of each database is
        fetched, decrypted and restored into a throwaway PostgreSQL, checks
        run against it, and the unit fails if anything is missing, too old,
        undecryptable or unexpected. It needs no local database and works
        without {option}`services.pgarchive.enable`, e.g. on a verifier host
        that only holds the decryption key
      '';

      startAt = mkOption {
        type = types.either types.str (types.listOf types.str);
        default = "*-*-* 06:00:00";
        example = "Sun *-*-* 04:00:00";
        description = ''
          When to run, as systemd calendar events (`OnCalendar=`). The timer
          is persistent (a run missed while the host was off happens at
          boot) and randomly delayed by up to 30 minutes
          (`systemd.timers.pgarchive-drill.timerConfig.RandomizedDelaySec`).
        '';
      };

      identityFile = drillSecretOption "age or SSH identity that decrypts the archives (one of the recipients they were encrypted to)." "/run/agenix/pgarchive-identity";
      passphraseFile = drillSecretOption "File whose first line is the passphrase the archives were encrypted with." "/run/secrets/pgarchive/passphrase";

      rcloneConfigFile = mkOption {
        type = types.nullOr types.str;
        default = cfg.rcloneConfigFile;
        defaultText = lib.literalExpression "config.services.pgarchive.rcloneConfigFile";
        example = "/run/secrets/pgarchive/rclone-readonly.conf";
        description = ''
          rclone.conf defining {option}`services.pgarchive.remote`; read-only
          credentials are enough. A string path read at run time, not in the
          Nix store; the drill unit receives it with `LoadCredential=`.
        '';
      };

      databases = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "db1" "db2" ];
        description = "Databases to drill; empty means every database found on the remote.";
      };

      maxAge = mkOption {
        type = types.str;
        default = "26h";
        example = "192h";
        description = ''
          The drill fails if a database's newest archive is older than this
          (daily dumps plus slack by default). A Go duration: `h`, `m`, `s`
          units (no days); `0` turns the limit off.
        '';
      };

      checks = mkOption {
        type = types.attrsOf (types.listOf checkType);
        default = { };
        example = lib.literalExpression ''
          {
            db1 = [ { query = "select count(*) from registrations"; expect = ">= 1000"; } ];
            "*" = [ { query = "select count(*) from pg_tables where schemaname = 'public'"; expect = "> 0"; } ];
          }
        '';
        description = ''
          Queries per database (`"*"`: every database) run against the
          restored copy, each with the value its result must match. They are
          written to a JSON file in the Nix store (not secret) and passed
          with `--checks-file`.
        '';
      };

      postgresqlPackage = mkOption {
        type = types.package;
        default = if pgCfg.enable then pgCfg.package else pkgs.postgresql;
        defaultText = lib.literalExpression ''
          if config.services.postgresql.enable then config.services.postgresql.package
          else pkgs.postgresql
        '';
        example = lib.literalExpression "pkgs.postgresql_17";
        description = ''
          PostgreSQL whose `initdb`, `pg_ctl`, `postgres` and `psql` run the
          throwaway cluster (`--pg-bin`). Its major version must be at least
          that of the server the dumps came from.
        '';
      };

      configFile = mkOption {
        type = types.package;
        readOnly = true;
        internal = true;
        default = drillConfigFile;
        description = "The drill's build-time validated settings file (remote, prefix, rclone.conf; no key).";
      };

      checksFile = mkOption {
        type = types.nullOr types.package;
        readOnly = true;
        internal = true;
        default = checksFile;
        description = "The JSON file passed with `--checks-file`, or null without checks.";
      };
    };
  };

  imports = [ ./authenticity.nix ./lifecycle.nix ./notify.nix ./status.nix ];

  config = lib.mkMerge [
    (lib.mkIf (cfg.enable || drill.enable || prune.enable || status.enable) {
      environment.systemPackages = [ wrapper ];
    })

    (lib.mkIf cfg.enable {
      assertions = [
        {
          assertion = backupCfg.enable;
          message = "services.pgarchive archives the dumps of services.postgresqlBackup: set services.postgresqlBackup.enable = true (or, on a host that only checks archives, leave services.pgarchive.enable off and enable services.pgarchive.drill).";
        }
        {
          assertion = lib.length keySources == 1;
          message =
            if keySources == [ ] then
              "services.pgarchive: no encryption key: set exactly one of recipients, recipientsFile, identityFile or passphraseFile (pgarchive never uploads plaintext)."
            else
              "services.pgarchive: set exactly one key source, but ${lib.concatStringsSep " and " keySources} are set together.";
        }
        {
          # The helper refuses to run without an rclone.conf; an environment
          # file may still supply one through RCLONE_CONFIG.
          assertion = cfg.rcloneConfigFile != null || cfg.environmentFile != null;
          message = "services.pgarchive.rcloneConfigFile is not set: pgarchive needs an rclone.conf that defines ${cfg.remote} (or RCLONE_CONFIG in services.pgarchive.environmentFile).";
        }
        {
          assertion = notDumped == [ ];
          message = "services.pgarchive.databases lists ${lib.concatStringsSep ", " notDumped}, which services.postgresqlBackup does not dump (it dumps: ${lib.concatStringsSep ", " dumped}).";
        }
      ]
      ++ map (opt: storeAssertion "services.pgarchive.${opt}" cfg.${opt}) secretPathOptions;

      systemd.services = lib.listToAttrs (map unitFor cfg.databases);
    })

    (lib.mkIf drill.enable {
      assertions = [
        {
          assertion = lib.length drillKeySources == 1;
          message =
            if drillKeySources == [ ] then
              "services.pgarchive.drill: no decryption key: set exactly one of drill.identityFile or drill.passphraseFile."
            else
              "services.pgarchive.drill: set exactly one of drill.identityFile or drill.passphraseFile, not both.";
        }
        {
          assertion = drill.rcloneConfigFile != null || cfg.environmentFile != null;
          message = "services.pgarchive.drill.rcloneConfigFile is not set: the drill needs an rclone.conf that defines ${cfg.remote} (set services.pgarchive.rcloneConfigFile or services.pgarchive.drill.rcloneConfigFile, or RCLONE_CONFIG in services.pgarchive.environmentFile).";
        }
        {
          # age's scrypt stanza and public-key stanzas never mix: archives
          # written with a passphrase open only with it, and vice versa.
          assertion = !cfg.enable || keySources == [ ] || drillKeySources == [ ]
            || (cfg.passphraseFile != null) == (drill.passphraseFile != null);
          message =
            if cfg.passphraseFile != null then
              "services.pgarchive.drill: the archives are encrypted with services.pgarchive.passphraseFile, so the drill needs drill.passphraseFile (not drill.identityFile)."
            else
              "services.pgarchive.drill: the archives are encrypted to public keys (${lib.concatStringsSep ", " keySources}), so the drill needs drill.identityFile (not drill.passphraseFile).";
        }
        {
          assertion = isDuration drill.maxAge;
          message = "services.pgarchive.drill.maxAge = \"${drill.maxAge}\" is not a duration pgarchive accepts: write e.g. 26h, 90m or 192h (no d for days).";
        }
        {
          assertion = drill.databases == [ ] || uncheckedDatabases == [ ];
          message = "services.pgarchive.drill.checks has checks for ${lib.concatStringsSep ", " uncheckedDatabases}, which drill.databases (${lib.concatStringsSep ", " drill.databases}) leaves out, so they would never run.";
        }
      ]
      ++ map (opt: storeAssertion "services.pgarchive.drill.${opt}" drill.${opt}) [ "identityFile" "passphraseFile" "rcloneConfigFile" ]
      # The archive half asserts this itself when it is enabled.
      ++ lib.optional (!cfg.enable) (storeAssertion "services.pgarchive.environmentFile" cfg.environmentFile);

      systemd.services.pgarchive-drill = drillUnit;

      systemd.timers.pgarchive-drill = {
        description = "Scheduled pgarchive restore drill";
        wantedBy = [ "timers.target" ];
        timerConfig = {
          OnCalendar = drill.startAt;
          Persistent = true;
          RandomizedDelaySec = lib.mkDefault "30min";
        };
      };
    })
  ];
}
