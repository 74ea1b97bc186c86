# services.pgarchive.report: the dashboard. After every status check (and on
# its own timer, if given) `pgarchive report` rewrites index.html and
# report.json in a directory a web server can serve; each file is replaced
# atomically, so nginx never sends half a page.
#
# services.pgarchive.alerts: the shipped Prometheus alert rules, added to
# services.prometheus.ruleFiles as their own file. (NixOS joins the strings
# of services.prometheus.rules into one YAML file: a second `groups:` of the
# user's there would make promtool refuse it.)
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption types;

  cfg = config.services.pgarchive;
  report = cfg.report;
  wiring = import ./wiring.nix;
  common = import ./common.nix { inherit lib pkgs cfg; };
  group = "pgarchive";

  # The status section (the same verdict as the check) and, when prune runs
  # here, its keep rules, so the page shows what the next prune removes.
  reportConfigFile = common.readerSettings {
    name = "pgarchive-report.json";
    inherit (report) rcloneConfigFile;
    metricsDir = cfg.metrics.textfileDirectory;
    section = {
      status = wiring.statusSection cfg.status;
    } // lib.optionalAttrs cfg.prune.enable {
      prune = wiring.pruneSection { inherit (cfg) prune; };
    };
  };
in
{
  options.services.pgarchive.report = {
    enable = lib.mkEnableOption ''
      the dashboard: `pgarchive report` writes `index.html` (one
      self-contained page: no script, no external font or stylesheet) and
      `report.json` into {option}`services.pgarchive.report.directory` after
      every run of `pgarchive-status.service` and at
      {option}`services.pgarchive.report.startAt`. The page shows, per
      database, its state on each upstream, a timeline of the last days by
      upstream, missing copies and untrusted archives by name, the dump
      size, the last drill, the backlog and what the next prune removes; its
      header has the status check's verdict. Serve the directory with
      {option}`services.nginx` behind your own authentication (see the
      README): it names databases, upstreams and sizes
    '';

    directory = mkOption {
      type = common.types.statePath;
      default = "/var/lib/pgarchive-report";
      example = "/srv/www/backups";
      description = ''
        Where `index.html` and `report.json` are written. Created by
        systemd-tmpfiles as `root:pgarchive`, mode `2775`; the files are
        mode `0644`, readable by a web server's user.
      '';
    };

    startAt = mkOption {
      type = types.nullOr (types.either types.str (types.listOf types.str));
      default = null;
      example = "*:0/30";
      description = ''
        Calendar events of a timer of its own (`OnCalendar=`). `null`: the
        report is only rewritten after each run of
        `pgarchive-status.service`, which then needs
        {option}`services.pgarchive.status.enable`.
      '';
    };

    days = mkOption {
      type = types.ints.between 1 3660;
      default = 35;
      description = "The timeline and the size chart cover the last this many days.";
    };

    rcloneConfigFile = mkOption {
      type = types.nullOr common.types.secretPath;
      default = cfg.status.rcloneConfigFile;
      defaultText = lib.literalExpression "config.services.pgarchive.status.rcloneConfigFile";
      example = "/run/secrets/pgarchive/rclone-readonly.conf";
      description = ''
        rclone.conf defining {option}`services.pgarchive.remote`; read-only
        credentials are enough (the report only lists and reads manifests).
        A string path read at run time, not in the Nix store, handed over
        with `LoadCredential=`.
      '';
    };

    configFile = common.settingsOption { file = reportConfigFile; what = "report unit's (remote, prefix, rclone.conf, metrics to read, status and prune sections; no key)"; };
  };

  options.services.pgarchive.alerts.enable = lib.mkEnableOption ''
    pgarchive's Prometheus alert rules (nix/prometheus/alerts.yml: stale,
    missing or unlisted archives per database and upstream, untrusted ones,
    failed archive runs, a growing or nearly full backlog, failed or missing
    drills, WAL problems, metrics files nobody updates) as a rule file of
    their own in {option}`services.prometheus.ruleFiles` (beside any
    {option}`services.prometheus.rules` of yours). They read what node_exporter's
    textfile collector serves from
    {option}`services.pgarchive.metrics.textfileDirectory`
  '';

  config = lib.mkMerge [
    (lib.mkIf report.enable {
      assertions = [
        (common.rcloneAssertion { option = "report.rcloneConfigFile"; value = report.rcloneConfigFile; who = "the report"; })
        {
          assertion = cfg.status.enable || report.startAt != null;
          message = "services.pgarchive.report runs after each status check: enable services.pgarchive.status or give services.pgarchive.report.startAt.";
        }
      ];

      users.groups.${group} = { };
      systemd.tmpfiles.rules = [ "d '${report.directory}' 2775 root ${group} - -" ];

      services.pgarchive.jobs.report = {
        description = "pgarchive report: rewrite the backups' dashboard in ${report.directory}";
        configFile = reportConfigFile;
        args = [ "report" "--html" "${report.directory}/index.html" "--json-file" "${report.directory}/report.json" "--days" (toString report.days) ];
        credentials = lib.optional (report.rcloneConfigFile != null) "rclone.conf:${report.rcloneConfigFile}";
        groups = [ group ];
        inherit (report) startAt;
        timerDescription = "Scheduled pgarchive report";
        randomizedDelay = "5min";
        serviceConfig = {
          ReadWritePaths = [ report.directory ];
          # The page is for a web server's user to read.
          UMask = "0022";
          # Exit status 1 is status's verdict, which the page shows and the
          # status unit already reports; 3 (no page written) fails the unit.
          SuccessExitStatus = [ 1 ];
        };
      };

      # Rewritten after every check, whatever its outcome (Wants=, not
      # Requires=; After= makes it wait for the check to end).
      systemd.services.pgarchive-report.after = [ "pgarchive-status.service" ];
      systemd.services.pgarchive-status = lib.mkIf cfg.status.enable { wants = [ "pgarchive-report.service" ]; };
    })

    (lib.mkIf cfg.alerts.enable {
      services.prometheus.ruleFiles = [ ./prometheus/alerts.yml ];
    })
  ];
}
