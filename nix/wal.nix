# services.pgarchive.wal: continuous archiving for point-in-time recovery.
# PostgreSQL's archive_command runs `pgarchive wal-push %p` with the archive
# units' settings (the same remote, keys and signing key, handed to the
# postgresql unit as credentials), and a timer takes base backups with
# `pgarchive basebackup`. Restoring is `pgarchive restore-cluster` (see
# README, "Point-in-time recovery").
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption types;

  cfg = config.services.pgarchive;
  wal = cfg.wal;
  common = import ./common.nix { inherit lib pkgs cfg; };
  wiring = import ./wiring.nix;
  credentials = wiring.credentials cfg;

  # PostgreSQL runs archive_command through /bin/sh and replaces %p; the
  # store paths and flag values here need no quoting.
  pushCommand = lib.concatStringsSep " " ([ common.program ] ++ map lib.escapeShellArg cfg.extraArgs
    ++ [ "--config" "${cfg.configFile}" "wal-push" "--durability" wal.durability "--compression" wal.compression ]
    ++ lib.optionals wal.async [ "--async" "--async-jobs" (toString wal.asyncJobs) ] ++ [ "%p" ]);
in
{
  options.services.pgarchive.wal = {
    enable = lib.mkEnableOption ''
      continuous WAL archiving for point-in-time recovery: sets
      `archive_mode`, `wal_level` and `archive_command` (`pgarchive
      wal-push %p`) in {option}`services.postgresql.settings`, hands the
      archive units' credentials to `postgresql.service`, and adds
      `pgarchive-basebackup.service` with its timer. Needs
      {option}`services.pgarchive.enable` (the remote and keys are the
      dumps')
    '';

    durability = mkOption {
      type = types.enum [ "every-upstream" "one-upstream-and-backlog" ];
      default = "every-upstream";
      description = ''
        When a WAL file counts as archived (PostgreSQL may then recycle
        it): once every writable upstream holds a verified copy, or once
        one does and the copy for the others is fsynced into the backlog in
        {option}`services.pgarchive.stateDir` (delivered by the next push
        and `pgarchive retry`). With `every-upstream`, one upstream down
        holds archiving up and WAL piles up in `pg_wal`.
      '';
    };

    compression = mkOption {
      type = types.enum [ "zstd" "none" ];
      default = "zstd";
      description = "Compression applied to each WAL file before encryption.";
    };

    async = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Archive asynchronously: `archive_command` only waits for
        `pgarchive-wal-uploader.service`, which pushes every file
        PostgreSQL has marked ready, {option}`services.pgarchive.wal.asyncJobs`
        at once and ahead of the calls, and marks a file done only once it
        is durable. One process per 16 MiB segment costs about a third of
        a second, too slow for a busy cluster (docs/pitr.md has figures);
        `false` pushes each file in archive_command itself.
      '';
    };

    asyncJobs = mkOption {
      type = types.ints.positive;
      default = 2;
      description = "Files the uploader pushes at once.";
    };

    archiveTimeout = mkOption {
      type = types.str;
      default = "5min";
      example = "60s";
      description = ''
        PostgreSQL's `archive_timeout`: on a quiet server, a segment is
        closed and archived after this long, which bounds the writes a lost
        host can take with it. Each forced segment is a 16 MiB file (less
        after compression).
      '';
    };

    baseBackup = {
      startAt = mkOption {
        type = types.either types.str (types.listOf types.str);
        default = "weekly";
        example = "Sun 03:00";
        description = ''
          When `pgarchive-basebackup.service` takes a base backup (systemd
          calendar events). Recovery replays the WAL since the newest base
          backup before the target, so more frequent ones restore faster.
          Prune them like dumps (they are the archives of database
          `base-<system identifier>-pg<major>`); prune removes WAL no kept
          base backup needs.
        '';
      };
      compression = mkOption {
        type = types.enum [ "gzip" "lz4" "zstd" "none" ];
        default = "gzip";
        description = "pg_basebackup's client-side compression.";
      };
    };
  };

  config = lib.mkIf (cfg.enable && wal.enable) {
    assertions = [
      {
        assertion = config.services.postgresql.enable;
        message = "services.pgarchive.wal archives the WAL of services.postgresql: enable it on the database host.";
      }
      {
        assertion = wal.durability != "one-upstream-and-backlog" || cfg.stateDir != null;
        message = "services.pgarchive.wal.durability = \"one-upstream-and-backlog\" needs services.pgarchive.stateDir for the backlog.";
      }
    ];

    services.postgresql.settings = {
      wal_level = lib.mkDefault "replica";
      archive_mode = lib.mkDefault "on";
      archive_command = pushCommand;
      archive_timeout = lib.mkDefault wal.archiveTimeout;
    };

    # archive_command runs in the server's unit: it gets the archive
    # units' credentials ($CREDENTIALS_DIRECTORY, which pgarchive expands)
    # and may write the backlog.
    systemd.services.postgresql = {
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      serviceConfig = lib.optionalAttrs (credentials != [ ]) { LoadCredential = credentials; }
        // lib.optionalAttrs (cfg.stateDir != null) { ReadWritePaths = [ cfg.stateDir ]; }
        // lib.optionalAttrs (cfg.environmentFile != null) { EnvironmentFile = [ cfg.environmentFile ]; };
    };

    services.pgarchive.jobs.wal-uploader = lib.mkIf wal.async {
      description = "pgarchive WAL uploader (asynchronous archiving)";
      args = [ "wal-push" "--uploader" "--uploader-idle" "0" "--pgdata" config.services.postgresql.dataDir
        "--durability" wal.durability "--compression" wal.compression "--async-jobs" (toString wal.asyncJobs) ];
      configFile = cfg.configFile;
      inherit credentials;
      serviceConfig = {
        DynamicUser = false;
        User = "postgres";
        Group = "postgres";
        Type = "simple";
        Restart = "always";
        RestartSec = "5s";
        ReadWritePaths = [ config.services.postgresql.dataDir ] ++ lib.optional (cfg.stateDir != null) cfg.stateDir;
      };
    };
    systemd.services.pgarchive-wal-uploader = lib.mkIf wal.async {
      wantedBy = [ "postgresql.service" ];
      after = [ "postgresql.service" ];
      partOf = [ "postgresql.service" ];
    };

    services.pgarchive.jobs.basebackup = {
      description = "pgarchive base backup of the PostgreSQL cluster (for point-in-time recovery)";
      # The server's own pg_basebackup (a global flag, after the command).
      args = [ "basebackup" "--compression" wal.baseBackup.compression "--pg-bin" "${config.services.postgresql.package}/bin" ];
      configFile = cfg.configFile;
      inherit credentials;
      inherit (wal.baseBackup) startAt;
      timerDescription = "Scheduled pgarchive base backup";
      writesMetrics = true;
      # pg_basebackup connects over the local socket as postgres (peer).
      serviceConfig = {
        DynamicUser = false;
        User = "postgres";
        Group = "postgres";
      } // lib.optionalAttrs (cfg.stateDir != null) { ReadWritePaths = [ cfg.stateDir ] ++ lib.optional (cfg.metrics.textfileDirectory != null) cfg.metrics.textfileDirectory; };
    };
    systemd.services.pgarchive-basebackup = {
      requires = [ "postgresql.service" ];
      after = [ "postgresql.service" ];
    };
  };
}
