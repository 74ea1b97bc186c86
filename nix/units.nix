# The one generator of pgarchive's own units. Each concern (drill.nix,
# prune.nix, status.nix, notify.nix) declares its job in
# services.pgarchive.jobs; this file maps them to a hardened oneshot service
# pgarchive-<name> and, with startAt, a persistent timer, as nixpkgs'
# borgbackup.nix maps its jobs with mkBackupService and mkBackupTimers.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption types;

  cfg = config.services.pgarchive;
  common = import ./common.nix { inherit lib pkgs cfg; };
  wiring = import ./wiring.nix;
  metricsDir = cfg.metrics.textfileDirectory;

  job = types.submodule ({ name, ... }: {
    options = {
      description = mkOption { type = types.str; description = "The service's description."; };
      args = mkOption {
        type = types.listOf types.str;
        description = "The command and its arguments, after the global ones; escaped for systemd.";
      };
      rawArgs = mkOption {
        type = types.listOf types.str;
        default = [ ];
        description = "Arguments appended unescaped, for systemd specifiers such as `%i`.";
      };
      configFile = mkOption {
        type = types.nullOr types.package;
        default = null;
        description = "The job's build-time checked settings file (`--config`).";
      };
      credentials = mkOption {
        type = types.listOf types.str;
        default = [ ];
        description = "`LoadCredential=` entries, `ID:PATH`.";
      };
      groups = mkOption {
        type = types.listOf types.str;
        default = [ ];
        description = "`SupplementaryGroups=`.";
      };
      writesMetrics = mkOption {
        type = types.bool;
        default = false;
        description = "Whether the job writes to the metrics directory (group and write access when one is set).";
      };
      jit = mkOption {
        type = types.bool;
        default = false;
        description = "Whether the job runs code that writes code at run time (PostgreSQL's JIT): no `MemoryDenyWriteExecute=`.";
      };
      serviceConfig = mkOption {
        type = types.attrsOf types.unspecified;
        default = { };
        description = "More `[Service]` settings.";
      };
      startAt = mkOption {
        type = types.nullOr (types.either types.str (types.listOf types.str));
        default = null;
        description = "Calendar events of the job's timer; `null`: no timer.";
      };
      timerDescription = mkOption { type = types.str; default = "Scheduled ${name}"; description = "The timer's description."; };
      randomizedDelay = mkOption { type = types.str; default = "30min"; description = "The timer's default `RandomizedDelaySec=`."; };
    };
  });

  mkService = name: j: {
    description = j.description;
    documentation = [ "https://github.com/pgarchive/pgarchive#nixos" ];
    # rclone and webhooks need the network; a timer firing at boot must not
    # race it.
    wants = [ "network-online.target" ];
    after = [ "network-online.target" ];
    serviceConfig = common.hardening // {
      Type = "oneshot";
      ExecStart = wiring.exec {
        inherit (common) program;
        inherit (j) configFile args rawArgs;
        inherit (cfg) extraArgs;
      };
    }
    // lib.optionalAttrs (!j.jit) { MemoryDenyWriteExecute = true; }
    // lib.optionalAttrs (j.credentials != [ ]) { LoadCredential = j.credentials; }
    // lib.optionalAttrs (cfg.environmentFile != null) { EnvironmentFile = [ cfg.environmentFile ]; }
    # The metrics directory is group-writable by pgarchive's writers
    # (backlog-metrics.nix), and read-only under ProtectSystem=strict
    # otherwise.
    // lib.optionalAttrs (j.writesMetrics && metricsDir != null) { ReadWritePaths = [ metricsDir ]; }
    // lib.optionalAttrs (groups j != [ ]) { SupplementaryGroups = groups j; }
    // j.serviceConfig;
  };

  groups = j: lib.unique (j.groups ++ lib.optional (j.writesMetrics && metricsDir != null) "pgarchive");

  mkTimer = name: j: {
    description = j.timerDescription;
    wantedBy = [ "timers.target" ];
    timerConfig = {
      OnCalendar = j.startAt;
      Persistent = true;
      RandomizedDelaySec = lib.mkDefault j.randomizedDelay;
    };
  };
in
{
  options.services.pgarchive.jobs = mkOption {
    type = types.attrsOf job;
    default = { };
    internal = true;
    description = "pgarchive's own units, each `pgarchive-<name>`, declared by the module's concerns.";
  };

  config = {
    systemd.services = lib.mapAttrs' (n: j: lib.nameValuePair "pgarchive-${n}" (mkService n j)) cfg.jobs;
    systemd.timers = lib.mapAttrs' (n: j: lib.nameValuePair "pgarchive-${n}" (mkTimer n j))
      (lib.filterAttrs (_: j: j.startAt != null) cfg.jobs);
  };
}
