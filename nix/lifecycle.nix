# services.pgarchive's lifecycle options: the backlog of uploads that failed
# (stateDir), healing after each archive, Prometheus metrics for
# node_exporter's textfile collector, and the scheduled prune with its own
# credentials. Imported by module.nix.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption types;

  cfg = config.services.pgarchive;
  prune = cfg.prune;
  backupCfg = config.services.postgresqlBackup;
  wiring = import ./wiring.nix;
  inherit (import ./common.nix { inherit lib pkgs cfg; }) program checkedSettings storeAssertion pathAssertion;

  metricsDir = cfg.metrics.textfileDirectory;

  # Writers of metrics files and readers of the backlog share this group:
  # the archive step (user postgres), the drill, prune and status units
  # (transient users) and the summary.
  group = "pgarchive";

  pruneConfigFile = checkedSettings "pgarchive-prune.json" (wiring.readSettings {
    inherit (cfg) remote prefix trustedSigners;
    inherit (prune) rcloneConfigFile;
    inherit metricsDir;
  });

  keepRuleSet = lib.any (r: prune.keep.${r} != null && prune.keep.${r} != 0) wiring.keepCounts
    || prune.keep.within != null;

  # The shape of prune's --keep-within (restic's spans and Go's durations),
  # minus what the helper refuses as ambiguous (months or minutes?): an "m"
  # standing alone or right after weeks or days, such as "6m" or "2d30m".
  # Refusing it here fails the rebuild instead of the first nightly prune.
  isKeepWithin = d:
    builtins.match "(([0-9]+([.][0-9]*)?|[.][0-9]+)(y|m|w|d|h|s|ms|us|µs|μs|ns))+" d != null
    && builtins.match "[0-9.]+m" d == null
    && builtins.match ".*[wd][0-9.]+m([0-9.].*)?" d == null;

  keepOption = what: mkOption {
    type = types.nullOr (types.addCheck types.int (n: n >= -1));
    default = null;
    example = 7;
    description = ''
      Keep the newest archive of each of the last N ${what}; `-1` keeps one
      for every ${what} there is, `null` or `0` leaves the rule off.
    '';
  };

  # Units that write metrics and run sandboxed (ProtectSystem=strict).
  sandboxedWriter = {
    serviceConfig = {
      SupplementaryGroups = [ group ];
      ReadWritePaths = [ metricsDir ];
    };
  };
in
{
  options.services.pgarchive = {
    stateDir = mkOption {
      type = types.str;
      default = "/var/lib/pgarchive";
      description = ''
        Where the archive step keeps the backlog: encrypted archives (never
        plaintext) that some upstream did not take, uploaded first by the
        next run or by `pgarchive retry`. Created owned by `postgres` (the
        user of the backup units), group `pgarchive`, mode `0750`.
      '';
    };

    backlogMaxSize = mkOption {
      type = types.str;
      default = "10Gi";
      example = "50Gi";
      description = ''
        Largest the backlog in {option}`services.pgarchive.stateDir` may
        grow, in rclone's size syntax (`512Mi`, `10Gi`, `1Ti`). When a new
        archive would pass it, the oldest archives are dropped from the
        backlog, with an error in the journal.
      '';
    };

    healAfterArchive = mkOption {
      type = types.bool;
      default = false;
      description = ''
        After each archive, copy that database's archives to the upstreams
        that lack them (`archive --heal`), from a verified copy on another
        upstream. Ciphertext only: no key is needed.
      '';
    };

    metrics.textfileDirectory = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/var/lib/prometheus-node-exporter-text";
      description = ''
        Directory of node_exporter's textfile collector, where the archive
        step, the drill, prune and the status check write their metrics
        (last success and failure, bytes and duration per database and
        upstream, archive counts, the last drill's result, the newest
        archive's age) as `pgarchive-*.prom`, replaced atomically. `null`
        writes none.

        The directory is created group-writable for the `pgarchive` group
        (mode `2775`), which every writer joins. Point the collector at it,
        e.g. `services.prometheus.exporters.node = { enable = true;
        enabledCollectors = [ "textfile" ]; extraFlags = [
        "--collector.textfile.directory=/var/lib/prometheus-node-exporter-text" ]; }`.
      '';
    };

    prune = {
      enable = lib.mkEnableOption ''
        a scheduled prune: archives that no keep rule keeps are deleted from
        every upstream (the manifest first, so a half-deleted archive never
        looks complete). The newest complete archive of a database is always
        kept. It needs no local database and works without
        {option}`services.pgarchive.enable`, so the credentials allowed to
        delete can live on another host than the upload-only ones
      '';

      startAt = mkOption {
        type = types.either types.str (types.listOf types.str);
        default = "*-*-* 04:00:00";
        example = "Sun *-*-* 05:00:00";
        description = ''
          When to prune, as systemd calendar events (`OnCalendar=`). The
          timer is persistent and randomly delayed by up to 30 minutes
          (`systemd.timers.pgarchive-prune.timerConfig.RandomizedDelaySec`).
        '';
      };

      keep = {
        last = mkOption {
          type = types.nullOr (types.addCheck types.int (n: n >= -1));
          default = null;
          example = 3;
          description = "Keep the N newest archives of each database; `-1` keeps all, `null` or `0` leaves the rule off.";
        };
        hourly = keepOption "hours";
        daily = keepOption "days";
        weekly = keepOption "ISO weeks";
        monthly = keepOption "months";
        yearly = keepOption "years";
        within = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "30d";
          description = ''
            Keep every archive younger than this, counted back from now (not,
            as restic does, from the newest archive): restic's spans or Go's
            durations, e.g. `36h`, `30d`, `2w` or `1y6m` (y = 365 days, m =
            30 days after a year, w = 7 days).
          '';
        };
      };

      databases = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "db1" ];
        description = "Databases to prune; empty means every database found on the remote.";
      };

      rcloneConfigFile = mkOption {
        type = types.nullOr types.str;
        default = cfg.rcloneConfigFile;
        defaultText = lib.literalExpression "config.services.pgarchive.rcloneConfigFile";
        example = "/run/secrets/pgarchive/rclone-prune.conf";
        description = ''
          rclone.conf defining {option}`services.pgarchive.remote` with
          credentials allowed to delete. Give the database host upload-only
          keys and this unit (here or on another host) its own. A string path
          read at run time, not in the Nix store; the prune unit receives it
          with `LoadCredential=`, and root's `pgarchive prune` uses it too.
        '';
      };

      configFile = mkOption {
        type = types.package;
        readOnly = true;
        internal = true;
        default = pruneConfigFile;
        description = "The prune unit's build-time validated settings file (remote, prefix, rclone.conf, metrics).";
      };
    };
  };

  config = lib.mkMerge [
    (lib.mkIf cfg.enable {
      assertions = [ (pathAssertion "services.pgarchive.stateDir" cfg.stateDir) ];
      users.groups.${group} = { };
      systemd.tmpfiles.rules = [ "d '${cfg.stateDir}' 0750 postgres ${group} - -" ];
    })

    (lib.mkIf (metricsDir != null) {
      assertions = [ (pathAssertion "services.pgarchive.metrics.textfileDirectory" metricsDir) ];
      users.groups.${group} = { };
      # setgid, so that every file in it stays in the group; no sticky bit,
      # since each writer replaces its file by rename.
      systemd.tmpfiles.rules = [ "d '${metricsDir}' 2775 root ${group} - -" ];
    })

    (lib.mkIf (cfg.enable && metricsDir != null) {
      systemd.services = lib.listToAttrs (map (db: {
        name = wiring.unitName backupCfg db;
        value.serviceConfig.SupplementaryGroups = [ group ];
      }) cfg.databases);
    })

    (lib.mkIf (cfg.drill.enable && metricsDir != null) {
      systemd.services.pgarchive-drill = sandboxedWriter;
    })

    (lib.mkIf (prune.enable && metricsDir != null) {
      systemd.services.pgarchive-prune = sandboxedWriter;
    })

    (lib.mkIf prune.enable {
      assertions = [
        {
          assertion = keepRuleSet;
          message = "services.pgarchive.prune: no keep rule: set at least one of prune.keep.last, hourly, daily, weekly, monthly, yearly or within (pgarchive refuses to prune without one rather than delete all but the newest archive).";
        }
        {
          assertion = prune.keep.within == null || isKeepWithin prune.keep.within;
          message = "services.pgarchive.prune.keep.within = \"${toString prune.keep.within}\" is not a duration prune accepts: write e.g. 36h, 30d, 2w or 1y6m (a bare or day-following \"m\" is ambiguous: 180d or 0y6m for months, 30m0s for minutes).";
        }
        {
          assertion = prune.rcloneConfigFile != null || cfg.environmentFile != null;
          message = "services.pgarchive.prune.rcloneConfigFile is not set: prune needs an rclone.conf that defines ${cfg.remote} with credentials allowed to delete (set services.pgarchive.prune.rcloneConfigFile or services.pgarchive.rcloneConfigFile, or RCLONE_CONFIG in services.pgarchive.environmentFile).";
        }
        (storeAssertion "services.pgarchive.prune.rcloneConfigFile" prune.rcloneConfigFile)
      ]
      # The archive and drill halves assert this themselves when enabled.
      ++ lib.optional (!cfg.enable && !cfg.drill.enable) (storeAssertion "services.pgarchive.environmentFile" cfg.environmentFile);

      systemd.services.pgarchive-prune = {
        description = "pgarchive prune: delete the archives no keep rule keeps, on every upstream";
        documentation = [ "https://github.com/pgarchive/pgarchive#nixos" ];
        wants = [ "network-online.target" ];
        after = [ "network-online.target" ];
        serviceConfig = import ./hardening.nix // {
          Type = "oneshot";
          ExecStart = wiring.pruneExecStart {
            inherit program prune;
            configFile = pruneConfigFile;
            inherit (cfg) extraArgs;
          };
          MemoryDenyWriteExecute = true;
        }
        // lib.optionalAttrs (prune.rcloneConfigFile != null) { LoadCredential = [ "rclone.conf:${prune.rcloneConfigFile}" ]; }
        // lib.optionalAttrs (cfg.environmentFile != null) { EnvironmentFile = [ cfg.environmentFile ]; };
      };

      systemd.timers.pgarchive-prune = {
        description = "Scheduled pgarchive prune";
        wantedBy = [ "timers.target" ];
        timerConfig = {
          OnCalendar = prune.startAt;
          Persistent = true;
          RandomizedDelaySec = lib.mkDefault "30min";
        };
      };
    })
  ];
}
