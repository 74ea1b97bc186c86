# services.pgarchive.notify: webhooks when a pgarchive unit fails (and,
# optionally, succeeds), sent by `pgarchive notify` from OnFailure=/OnSuccess=
# handler units, and a daily summary.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption types;

  cfg = config.services.pgarchive;
  notify = cfg.notify;
  summary = notify.summary;
  backupCfg = config.services.postgresqlBackup;
  wiring = import ./wiring.nix;
  common = import ./common.nix { inherit lib pkgs cfg; };

  used = notify.onFailure || notify.onSuccess || summary.enable;

  # The units whose end is reported: what pgarchive runs on this host.
  watched =
    lib.optionals cfg.enable (map (wiring.unitName backupCfg) cfg.databases)
    ++ lib.optional cfg.drill.enable "pgarchive-drill"
    ++ lib.optional cfg.prune.enable "pgarchive-prune"
    # A failed check is the alert that an archive is stale or missing.
    ++ lib.optional cfg.status.enable "pgarchive-status"
    ++ lib.optionals (cfg.enable && cfg.wal.enable) ([ "pgarchive-basebackup" ] ++ lib.optional cfg.wal.async "pgarchive-wal-uploader");

  # The summary reads the remote with the archive host's rclone.conf, or the
  # drill's on a verifier host, and the backlog where this host archives.
  summaryRcloneConfigFile = if cfg.rcloneConfigFile != null then cfg.rcloneConfigFile else cfg.drill.rcloneConfigFile;

  summaryConfigFile = common.readerSettings {
    name = "pgarchive-summary.json";
    rcloneConfigFile = summaryRcloneConfigFile;
    stateDir = if cfg.enable then cfg.stateDir else null;
  };

  webhookCredential = lib.optional (notify.webhookUrlFile != null) "webhook-url:${notify.webhookUrlFile}";

  # How every notice is sent: the webhook (a credential the helper reads at
  # run time, or a plain URL the user chose to put in the store) and the
  # payload format.
  webhookArgs =
    (if notify.webhookUrlFile != null
     then [ "--webhook-url-file" "$CREDENTIALS_DIRECTORY/webhook-url" ]
     else [ "--webhook-url" notify.webhookUrl ])
    ++ [ "--format" notify.format ];

  # A template per event: the instance (%i, left for systemd to expand) is
  # the unit that ended (%n of the watched unit), and MONITOR_* variables
  # from systemd describe how. journalctl reads its last lines.
  handler = event: {
    description = "pgarchive: report the ${event} of %i";
    args = [ "notify" "--event" event ] ++ webhookArgs ++ [ "--journal-lines" (toString notify.journalLines) ];
    rawArgs = [ "--unit" "%i" ];
    credentials = webhookCredential;
    groups = [ "systemd-journal" ];
  };
in
{
  options.services.pgarchive.notify = {
    onFailure = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Post to the webhook when a unit of pgarchive fails: each backup unit
        pgarchive archives for, the drill, prune, the status check (a
        stale or missing archive) and the report (when it could not write
        the page). The message names the
        unit, the database, the failing upstream and the unit's last journal
        lines (`OnFailure=pgarchive-notify-failure@%n.service`).
      '';
    };

    onSuccess = mkOption {
      type = types.bool;
      default = false;
      description = "Post to the webhook after each successful run of those units too (`OnSuccess=`).";
    };

    webhookUrl = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "https://hooks.slack.com/services/T000/B000/XXXX";
      description = ''
        URL the notifications are posted to. It ends up in the
        world-readable Nix store and on the notify command line; since a
        webhook URL is usually a bearer secret, prefer
        {option}`services.pgarchive.notify.webhookUrlFile`.
      '';
    };

    webhookUrlFile = mkOption {
      type = types.nullOr common.types.secretPath;
      default = null;
      example = "/run/secrets/pgarchive/webhook-url";
      description = ''
        File holding the webhook URL. A string path read at run time, e.g.
        from sops-nix or agenix; it must not be in the Nix store. The notify
        units receive it with `LoadCredential=`.
      '';
    };

    format = mkOption {
      type = types.enum [ "slack" "json" ];
      default = "slack";
      description = ''
        Payload: `slack` posts `{"text": …}` as Slack's incoming webhooks
        (and Mattermost, Rocket.Chat, Discord's `/slack` endpoint) accept
        it; `json` posts pgarchive's own object with every field.
      '';
    };

    journalLines = mkOption {
      # pgarchive notify's own limit.
      type = types.ints.between 0 200;
      default = 20;
      description = ''
        How many of the failed unit's last journal lines a notification
        carries. They leave the host with the message; `0` sends none.
      '';
    };

    summary = {
      enable = lib.mkEnableOption ''
        a daily summary on the webhook: what was archived in the last 24
        hours, per upstream, and the size of the backlog
      '';

      startAt = mkOption {
        type = types.either types.str (types.listOf types.str);
        default = "*-*-* 08:00:00";
        description = "When to send the summary, as systemd calendar events (`OnCalendar=`).";
      };

      configFile = common.settingsOption { file = summaryConfigFile; what = "summary's (remote, prefix, rclone.conf, backlog)"; };
    };
  };

  config = lib.mkMerge [
    (lib.mkIf used {
      assertions = [
        {
          assertion = (notify.webhookUrl != null) != (notify.webhookUrlFile != null);
          message =
            if notify.webhookUrl == null then
              "services.pgarchive.notify: no webhook: set exactly one of notify.webhookUrl or notify.webhookUrlFile."
            else
              "services.pgarchive.notify: set exactly one of notify.webhookUrl or notify.webhookUrlFile, not both.";
        }
      ];
    })

    (lib.mkIf summary.enable {
      assertions = [
        {
          assertion = summaryRcloneConfigFile != null || cfg.environmentFile != null;
          message = "services.pgarchive.notify.summary needs an rclone.conf that defines ${cfg.remote}: set services.pgarchive.rcloneConfigFile (or RCLONE_CONFIG in services.pgarchive.environmentFile).";
        }
      ];

      services.pgarchive.jobs.notify-summary = {
        description = "pgarchive: post the daily summary";
        configFile = summaryConfigFile;
        args = [ "notify" "--event" "summary" ] ++ webhookArgs;
        credentials = lib.optional (summaryRcloneConfigFile != null) "rclone.conf:${summaryRcloneConfigFile}" ++ webhookCredential;
        # The backlog directory is group-readable, not world-readable.
        groups = lib.optional cfg.enable "pgarchive";
        inherit (summary) startAt;
        timerDescription = "Daily pgarchive summary";
        randomizedDelay = "10min";
      };
    })

    (lib.mkIf notify.onFailure {
      # The report fails only when it wrote no page (its exit 1 is the
      # status verdict, which the status unit reports): failures only, a
      # success every hour would be noise.
      systemd.services = lib.genAttrs (watched ++ lib.optional cfg.report.enable "pgarchive-report")
        (_: { onFailure = [ "pgarchive-notify-failure@%n.service" ]; });
      services.pgarchive.jobs."notify-failure@" = handler "failure";
    })

    (lib.mkIf notify.onSuccess {
      systemd.services = lib.genAttrs watched (_: { onSuccess = [ "pgarchive-notify-success@%n.service" ]; });
      services.pgarchive.jobs."notify-success@" = handler "success";
    })
  ];
}
