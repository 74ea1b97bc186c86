# services.pgarchive's backlog of uploads that failed (stateDir), healing
# after each archive, and the directory of Prometheus metrics for
# node_exporter's textfile collector.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption types;

  cfg = config.services.pgarchive;
  backupCfg = config.services.postgresqlBackup;
  wiring = import ./wiring.nix;
  common = import ./common.nix { inherit lib pkgs cfg; };

  metricsDir = cfg.metrics.textfileDirectory;

  # Writers of metrics files and readers of the backlog share this group:
  # the archive step (user postgres), the drill, prune and status units
  # (transient users) and the summary.
  group = "pgarchive";
in
{
  options.services.pgarchive = {
    stateDir = mkOption {
      type = common.types.statePath;
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
        backlog, with an error in the journal. Checked when the system is
        built (`pgarchive check-config`).
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
      type = types.nullOr common.types.statePath;
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
  };

  config = lib.mkMerge [
    (lib.mkIf cfg.enable {
      users.groups.${group} = { };
      systemd.tmpfiles.rules = [ "d '${cfg.stateDir}' 0750 postgres ${group} - -" ];
    })

    (lib.mkIf (metricsDir != null) {
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
  ];
}
