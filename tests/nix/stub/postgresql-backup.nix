# Stand-in for nixpkgs' services.postgresqlBackup: its options (names, types,
# defaults) and the units it defines, which services.pgarchive extends.
{ config, lib, ... }:

let
  inherit (lib) mkOption types;
  cfg = config.services.postgresqlBackup;
  suffix = { none = ""; gzip = ".gz"; zstd = ".zstd"; }.${cfg.compression};

  unit = db: dumpCmd: {
    description = "Backup of ${db} database(s)";
    requires = [ "postgresql.target" ];
    script = ''
      umask 0077
      ${dumpCmd} > ${cfg.location}/${db}.in-progress.sql${suffix}
      mv ${cfg.location}/${db}.in-progress.sql${suffix} ${cfg.location}/${db}.sql${suffix}
    '';
    serviceConfig = { Type = "oneshot"; User = "postgres"; };
    inherit (cfg) startAt;
  };
in
{
  options.services.postgresqlBackup = {
    enable = lib.mkEnableOption "PostgreSQL dumps";
    startAt = mkOption { type = types.either (types.listOf types.str) types.str; default = "*-*-* 01:15:00"; };
    backupAll = mkOption { type = types.bool; default = cfg.databases == [ ]; };
    databases = mkOption { type = types.listOf types.str; default = [ ]; };
    location = mkOption { type = types.path; default = "/var/backup/postgresql"; };
    compression = mkOption { type = types.enum [ "none" "gzip" "zstd" ]; default = "gzip"; };
  };

  config = lib.mkIf cfg.enable {
    systemd.services =
      if cfg.backupAll then { postgresqlBackup = unit "all" "pg_dumpall"; }
      else lib.listToAttrs (map (db: { name = "postgresqlBackup-${db}"; value = unit db "pg_dump -C ${db}"; }) cfg.databases);
  };
}
