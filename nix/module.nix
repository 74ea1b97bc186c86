# services.pgarchive: after each dump of services.postgresqlBackup, encrypt it
# with age and upload it to every upstream of an rclone remote. This file
# holds the options every part shares and the archive half (the backup
# units' ExecStartPost); each other concern has its own file:
#   drill.nix            scheduled restore drills (services.pgarchive.drill)
#   prune.nix            scheduled prune (services.pgarchive.prune)
#   status.nix           the monitoring check (services.pgarchive.status)
#   notify.nix           webhooks and the daily summary (services.pgarchive.notify)
#   backlog-metrics.nix  the backlog, healing and metrics directories
#   authenticity.nix     signing and trusted signers
#   wrapper.nix          root's `pgarchive` with the units' settings
#   units.nix            the one generator of pgarchive's own units
#   wal.nix              continuous archiving and base backups (services.pgarchive.wal)
# Any part can be enabled without the others (a verifier host runs only the
# drill).
#
# flake.nix applies the first argument, so that the package option can default
# to the flake's own build and the overlay stays optional.
{ flakePackages ? { } }:

{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption types;

  cfg = config.services.pgarchive;
  backupCfg = config.services.postgresqlBackup;
  wiring = import ./wiring.nix;
  common = import ./common.nix { inherit lib pkgs cfg; };
  system = pkgs.stdenv.hostPlatform.system;

  # The archive units' settings: remote, dumps, the encryption key, the
  # backlog and metrics.
  archiveConfigFile = common.checkedSettings "pgarchive.json" (wiring.settings { inherit cfg; backup = backupCfg; });

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
            inherit (common) program;
            inherit db;
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

  secretFileOption = what: example: common.secretOption { inherit what example; receiver = "The backup unit (user `postgres`)"; };

  keySources = wiring.keySources cfg;
  dumped = wiring.dumpedDatabases backupCfg;
  notDumped = lib.filter (db: !(lib.elem db dumped)) cfg.databases;
in
{
  # One module however often it is imported (nixosModules.default and
  # nixosModules.pgarchive are the same).
  key = "github:pgarchive/pgarchive#nixosModules.pgarchive";
  _file = ./module.nix;

  imports = [
    ./units.nix
    ./authenticity.nix
    ./backlog-metrics.nix
    ./drill.nix
    ./prune.nix
    ./status.nix
    ./notify.nix
    ./wrapper.nix
    ./wal.nix
    ./report.nix
  ];

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

    buildPlatformPackage = mkOption {
      type = types.package;
      default = flakePackages.${pkgs.stdenv.buildPlatform.system}.default or cfg.package;
      defaultText = lib.literalExpression "pgarchive.packages.\${pkgs.stdenv.buildPlatform.system}.default";
      internal = true;
      description = "pgarchive for the build platform: it checks the settings files of a cross-built system.";
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
      description = "Extra global arguments for every unit and root's wrapper, placed before the command.";
    };

    environmentFile = mkOption {
      type = types.nullOr common.types.secretPath;
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

    configFile = common.settingsOption { file = archiveConfigFile; what = "archive units' (for units of your own)"; };
  };

  config = lib.mkIf cfg.enable {
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
    ];

    systemd.services = lib.listToAttrs (map unitFor cfg.databases);
  };
}
