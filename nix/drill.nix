# services.pgarchive.drill: on a schedule, restore the newest archives into
# a throwaway PostgreSQL and run checks against them. Needs no local
# database and works without services.pgarchive.enable, e.g. on a verifier
# host that only holds the decryption key.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption types;

  cfg = config.services.pgarchive;
  drill = cfg.drill;
  pgCfg = config.services.postgresql;
  wiring = import ./wiring.nix;
  common = import ./common.nix { inherit lib pkgs cfg; };

  checksFile =
    if drill.checks == { } then null
    else pkgs.writeText "pgarchive-drill-checks.json" (builtins.toJSON drill.checks);

  # The drill's settings: where the archives are, its decryption key (by
  # credential path) and its own section; nothing of the archive units'
  # keys. check-config validates maxAge and the databases at build time.
  drillSettings = secretPath: wiring.readSettings {
    inherit (cfg) remote prefix trustedSigners;
    rcloneConfigFile = if drill.rcloneConfigFile == null then null else secretPath { id = "rclone.conf"; option = "rcloneConfigFile"; };
    metricsDir = cfg.metrics.textfileDirectory;
  }
  // wiring.drillKeySettings secretPath drill
  // { pg-bin = "${drill.postgresqlPackage}/bin"; drill = wiring.drillSection { inherit drill checksFile; }; };

  drillConfigFile = common.checkedSettings "pgarchive-drill.json" (drillSettings wiring.credentialPath);

  drillKeySources = wiring.drillKeySources drill;
  keySources = wiring.keySources cfg;

  drillSecretOption = what: example: common.secretOption { inherit what example; receiver = "The drill unit (a transient user)"; };

  # A pg_dumpall archive ("all") holds every database: checks may name any.
  uncheckedDatabases = lib.filter (db: db != "*" && !(lib.elem db drill.databases) && !(lib.elem "all" drill.databases)) (lib.attrNames drill.checks);

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
  options.services.pgarchive.drill = {
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
      type = types.nullOr common.types.secretPath;
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
        units (no days); `0` turns the limit off. Checked when the system is
        built (`pgarchive check-config`).
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
        written to a JSON file in the Nix store (not secret), named in the
        drill's settings (`checks-file`).
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
        throwaway cluster (`pg-bin`). Its major version must be at least
        that of the server the dumps came from.
      '';
    };

    configFile = common.settingsOption { file = drillConfigFile; what = "drill's (remote, prefix, rclone.conf, key, drill section)"; };


    checksFile = mkOption {
      type = types.nullOr types.package;
      readOnly = true;
      internal = true;
      default = checksFile;
      description = "The JSON file the drill's settings name as `checks-file`, or null without checks.";
    };
  };

  config = lib.mkIf drill.enable {
    assertions = [
      {
        assertion = lib.length drillKeySources == 1;
        message =
          if drillKeySources == [ ] then
            "services.pgarchive.drill: no decryption key: set exactly one of drill.identityFile or drill.passphraseFile."
          else
            "services.pgarchive.drill: set exactly one of drill.identityFile or drill.passphraseFile, not both.";
      }
      (common.rcloneAssertion { option = "drill.rcloneConfigFile"; value = drill.rcloneConfigFile; who = "the drill"; })
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
        assertion = drill.databases == [ ] || uncheckedDatabases == [ ];
        message = "services.pgarchive.drill.checks has checks for ${lib.concatStringsSep ", " uncheckedDatabases}, which drill.databases (${lib.concatStringsSep ", " drill.databases}) leaves out, so they would never run.";
      }
    ];

    services.pgarchive.jobs.drill = {
      description = "pgarchive drill: restore the newest archives into a throwaway PostgreSQL and check them";
      configFile = drillConfigFile;
      args = [ "drill" ];
      credentials = wiring.drillCredentials drill;
      writesMetrics = true;
      # No MemoryDenyWriteExecute: PostgreSQL's JIT writes code at run time.
      jit = true;
      inherit (drill) startAt;
      timerDescription = "Scheduled pgarchive restore drill";
    };

    # initdb refuses root: a transient user (DynamicUser) owns the throwaway
    # cluster, which lives in the unit's private /tmp and goes with it; the
    # cluster listens on a socket (AF_UNIX), rclone reaches the remote over
    # IP. A drill competes with the production server on an archive host.
    systemd.services.pgarchive-drill.serviceConfig = {
      Nice = lib.mkDefault 10;
      IOSchedulingClass = lib.mkDefault "best-effort";
      IOSchedulingPriority = lib.mkDefault 7;
    };
  };
}
