# services.pgarchive.status: `pgarchive status` on a timer, the monitoring
# check. It fails when a database's newest complete archive is stale or
# missing on some upstream, or an upstream cannot be listed, so the notify
# hooks report it; with metrics it writes pgarchive-status.prom, the series
# that alert rules on archive age need.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption types;

  cfg = config.services.pgarchive;
  status = cfg.status;
  wiring = import ./wiring.nix;
  common = import ./common.nix { inherit lib pkgs cfg; };

  # maxAge and the databases go into the settings as written; check-config
  # validates them at build time.
  statusConfigFile = common.readerSettings {
    name = "pgarchive-status.json";
    inherit (status) rcloneConfigFile;
    metricsDir = cfg.metrics.textfileDirectory;
    section.status = wiring.statusSection status;
  };
in
{
  options.services.pgarchive.status = {
    enable = lib.mkEnableOption ''
      the monitoring check: on a timer, `pgarchive status` judges each
      database on each upstream by its newest complete archive and fails
      `pgarchive-status.service` when one is older than
      {option}`services.pgarchive.status.maxAge` (STALE), when a database
      has none there (MISSING) or an upstream cannot be listed (UNLISTED),
      so that {option}`services.pgarchive.notify.onFailure` sends a notice.
      With {option}`services.pgarchive.metrics.textfileDirectory` it writes
      `pgarchive-status.prom` (`pgarchive_status_ok`,
      `pgarchive_archives`, `pgarchive_newest_archive_age_seconds`). It
      needs no key and no local database and works without
      {option}`services.pgarchive.enable`, e.g. on a verifier host
    '';

    startAt = mkOption {
      type = types.either types.str (types.listOf types.str);
      default = "hourly";
      example = "*:0/15";
      description = ''
        When to check, as systemd calendar events (`OnCalendar=`). The timer
        is persistent and randomly delayed by up to 5 minutes
        (`systemd.timers.pgarchive-status.timerConfig.RandomizedDelaySec`).
        While something is wrong, every run fails and, with
        {option}`services.pgarchive.notify.onFailure`, sends a notice; with
        {option}`services.pgarchive.notify.onSuccess`, every run that finds
        all well sends one too.
      '';
    };

    maxAge = mkOption {
      type = types.str;
      default = "26h";
      example = "192h";
      description = ''
        A database is STALE on an upstream when its newest complete archive
        there is older than this (a nightly dump plus slack by default). A
        Go duration: `h`, `m`, `s` units (no days); `0` turns the limit off.
        Checked when the system is built (`pgarchive check-config`).
      '';
    };

    databases = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "db1" "db2" ];
      description = ''
        Databases that must have a recent archive on every upstream: one
        with none is MISSING. Empty checks every database found on the
        remote, and so cannot notice a database whose archives never
        arrived anywhere. Names are checked when the system is built.
      '';
    };

    rcloneConfigFile = mkOption {
      type = types.nullOr common.types.secretPath;
      default = if cfg.rcloneConfigFile != null then cfg.rcloneConfigFile else cfg.drill.rcloneConfigFile;
      defaultText = lib.literalExpression ''
        if config.services.pgarchive.rcloneConfigFile != null then config.services.pgarchive.rcloneConfigFile
        else config.services.pgarchive.drill.rcloneConfigFile
      '';
      example = "/run/secrets/pgarchive/rclone-readonly.conf";
      description = ''
        rclone.conf defining {option}`services.pgarchive.remote`; read-only
        credentials are enough (status only lists). A string path read at
        run time, not in the Nix store; the status unit receives it with
        `LoadCredential=`.
      '';
    };

    configFile = common.settingsOption { file = statusConfigFile; what = "status unit's (remote, prefix, rclone.conf, metrics, status section; no key)"; };
  };

  config = lib.mkIf status.enable {
    assertions = [
      (common.rcloneAssertion { option = "status.rcloneConfigFile"; value = status.rcloneConfigFile; who = "the status check"; })
    ];

    services.pgarchive.jobs.status = {
      description = "pgarchive status: check that every upstream holds a recent complete archive of each database";
      configFile = statusConfigFile;
      args = [ "status" ];
      credentials = lib.optional (status.rcloneConfigFile != null) "rclone.conf:${status.rcloneConfigFile}";
      writesMetrics = true;
      inherit (status) startAt;
      timerDescription = "Scheduled pgarchive status check";
      randomizedDelay = "5min";
    };
  };
}
