# Root's `pgarchive`, like restic.nix's wrapper: the units' settings for
# manual runs (list, verify, restore, archive, status, retry, heal, prune).
# Its settings file holds the secret files themselves (root reads them
# directly), the decryption key of the drill where the archive units' own
# key does not decrypt, psql for restore --into, and prune's section with
# prune's own rclone.conf, so `pgarchive prune` as root deletes with the
# credentials allowed to. Flags and environment still win over the file;
# the helper decides every precedence, the script parses nothing.
{ config, lib, pkgs, ... }:

let
  cfg = config.services.pgarchive;
  drill = cfg.drill;
  prune = cfg.prune;
  status = cfg.status;
  pgCfg = config.services.postgresql;
  backupCfg = config.services.postgresqlBackup;
  wiring = import ./wiring.nix;
  common = import ./common.nix { inherit lib pkgs cfg; };

  # On a host that archives nothing, root reads the archives as one of its
  # units does: the drill, else prune, else the status check.
  readRclone =
    if drill.enable || !(prune.enable || status.enable) then drill.rcloneConfigFile
    else if prune.enable then prune.rcloneConfigFile
    else status.rcloneConfigFile;

  base =
    if cfg.enable then wiring.rootSettings { inherit cfg; backup = backupCfg; }
    else wiring.readSettings {
      inherit (cfg) remote prefix trustedSigners;
      rcloneConfigFile = readRclone;
      metricsDir = cfg.metrics.textfileDirectory;
    };

  # A key for verify --deep and restore: the archive units' own identity or
  # passphrase decrypts what they wrote, so it needs no default; otherwise
  # the drill's key. With public-key archives the drill's identity is one of
  # the recipients, so a manual `archive` that also encrypts to it adds no
  # new reader. A key given on the command line replaces it.
  archiveKeyDecrypts = cfg.enable && (cfg.identityFile != null || cfg.passphraseFile != null);
  defaultKey = lib.optionalAttrs (drill.enable && !archiveKeyDecrypts)
    (wiring.drillKeySettings (s: toString drill.${s.option}) drill);

  # Where restore --into finds psql (and drill, were root allowed to run it).
  pgBin =
    if drill.enable then "${drill.postgresqlPackage}/bin"
    else if pgCfg.enable then "${pgCfg.package}/bin"
    else null;

  rootSettings = base // defaultKey
    // lib.optionalAttrs (pgBin != null) { pg-bin = pgBin; }
    // lib.optionalAttrs prune.enable {
      prune = wiring.pruneSection { inherit prune; rcloneConfigFile = prune.rcloneConfigFile; };
    }
    // lib.optionalAttrs status.enable { status = wiring.statusSection status; };

  rootConfigFile = common.checkedSettings "pgarchive-root.json" rootSettings;

  wrapper = pkgs.writeShellScriptBin "pgarchive" (lib.optionalString (cfg.environmentFile != null) ''
    set -a
    source ${lib.escapeShellArg cfg.environmentFile}
    set +a
  '' + ''
    exec ${common.program} --config ${rootConfigFile} ${lib.escapeShellArgs cfg.extraArgs} "$@"
  '');
in
{
  options.services.pgarchive.rootConfigFile = lib.mkOption {
    type = lib.types.package;
    readOnly = true;
    internal = true;
    default = rootConfigFile;
    description = "Root's wrapper's build-time validated settings file.";
  };

  config = lib.mkIf (cfg.enable || drill.enable || prune.enable || status.enable) {
    environment.systemPackages = [ wrapper ];
  };
}
