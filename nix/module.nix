# services.pgarchive: after each dump of services.postgresqlBackup, encrypt it
# with age and upload it to every upstream of an rclone remote.
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
  system = pkgs.stdenv.hostPlatform.system;

  settings = wiring.settings { inherit cfg; backup = backupCfg; };

  # Validated at build time, as sops-nix validates its manifest, so that a bad
  # setting fails nixos-rebuild rather than the first nightly backup. A cross
  # build cannot run the target's binary, so it skips the check.
  configFile = pkgs.runCommand "pgarchive.json" {
    json = builtins.toJSON settings;
    passAsFile = [ "json" ];
    preferLocalBuild = true;
  } (lib.optionalString (pkgs.stdenv.buildPlatform.canExecute pkgs.stdenv.hostPlatform) ''
    ${cfg.package}/bin/pgarchive check-config "$jsonPath"
  '' + ''
    cp "$jsonPath" "$out"
  '');

  program = "${cfg.package}/bin/pgarchive";

  # Like restic's createWrapper: root gets the unit's settings for manual runs.
  wrapper = pkgs.writeShellScriptBin "pgarchive" ''
    ${lib.optionalString (cfg.environmentFile != null) ''
      set -a
      source ${lib.escapeShellArg cfg.environmentFile}
      set +a
    ''}
    exec ${program} --config ${configFile} ${lib.escapeShellArgs (wiring.rootFlags cfg ++ cfg.extraArgs)} "$@"
  '';

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
            inherit program configFile db;
            inherit (cfg) extraArgs;
            backup = backupCfg;
          })
        ];
      }
      // lib.optionalAttrs (credentials != [ ]) { LoadCredential = credentials; }
      // lib.optionalAttrs (cfg.environmentFile != null) { EnvironmentFile = [ cfg.environmentFile ]; };
    };
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

  inStore = p: p == builtins.storeDir || lib.hasPrefix "${builtins.storeDir}/" p;

  secretPathOptions = map (s: s.option) wiring.secrets ++ [ "environmentFile" ];

  keySources = wiring.keySources cfg;
  dumped = wiring.dumpedDatabases backupCfg;
  notDumped = lib.filter (db: !(lib.elem db dumped)) cfg.databases;
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
        systemd `EnvironmentFile=` for the backup units (and sourced by the
        root wrapper), e.g. for `RCLONE_CONFIG_<REMOTE>_<KEY>` overrides or
        `PGARCHIVE_*` settings. It is applied to the whole unit, `pg_dump`
        included. It must not be in the Nix store.
      '';
    };

    configFile = mkOption {
      type = types.package;
      readOnly = true;
      internal = true;
      default = configFile;
      description = "The generated, build-time validated settings file, for units of your own.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = backupCfg.enable;
        message = "services.pgarchive archives the dumps of services.postgresqlBackup: set services.postgresqlBackup.enable = true.";
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
    ++ map (opt: {
      assertion = cfg.${opt} == null || !inStore cfg.${opt};
      message = "services.pgarchive.${opt} is ${cfg.${opt}}, inside the world-readable Nix store: secrets must stay out of it. Point it at a file read at run time (e.g. config.sops.secrets.<name>.path or config.age.secrets.<name>.path).";
    }) secretPathOptions;

    systemd.services = lib.listToAttrs (map unitFor cfg.databases);

    environment.systemPackages = [ wrapper ];
  };
}
