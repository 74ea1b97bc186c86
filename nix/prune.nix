# services.pgarchive.prune: on a schedule, delete the archives no keep rule
# keeps, on every upstream, with its own credentials (the only ones allowed
# to delete). Needs no local database and works without
# services.pgarchive.enable, so delete rights can live on another host.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption types;

  cfg = config.services.pgarchive;
  prune = cfg.prune;
  wiring = import ./wiring.nix;
  common = import ./common.nix { inherit lib pkgs cfg; };

  # The keep rules go into the settings as written: check-config refuses a
  # rule set that is empty or that prune could not read, at build time.
  pruneConfigFile = common.readerSettings {
    name = "pgarchive-prune.json";
    inherit (prune) rcloneConfigFile;
    metricsDir = cfg.metrics.textfileDirectory;
    section.prune = wiring.pruneSection { inherit prune; };
  };

  keepOption = what: mkOption {
    type = types.nullOr types.int;
    default = null;
    example = 7;
    description = ''
      Keep the newest archive of each of the last N ${what}; `-1` keeps one
      for every ${what} there is, `null` or `0` leaves the rule off.
    '';
  };
in
{
  options.services.pgarchive.prune = {
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
      last = keepOption "archives (the N newest)";
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
          30 days after a year, w = 7 days). Checked when the system is
          built (`pgarchive check-config`).
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
      type = types.nullOr common.types.secretPath;
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

    configFile = common.settingsOption { file = pruneConfigFile; what = "prune unit's (remote, prefix, rclone.conf, metrics, keep rules)"; };
  };

  config = lib.mkIf prune.enable {
    assertions = [
      (common.rcloneAssertion { option = "prune.rcloneConfigFile"; value = prune.rcloneConfigFile; who = "prune"; extra = " with credentials allowed to delete"; })
    ];

    services.pgarchive.jobs.prune = {
      description = "pgarchive prune: delete the archives no keep rule keeps, on every upstream";
      configFile = pruneConfigFile;
      args = [ "prune" ];
      credentials = lib.optional (prune.rcloneConfigFile != null) "rclone.conf:${prune.rcloneConfigFile}";
      writesMetrics = true;
      inherit (prune) startAt;
      timerDescription = "Scheduled pgarchive prune";
    };
  };
}
