# Root's `pgarchive`, like restic's createWrapper: the units' settings for
# manual runs (list, verify, restore, archive, status, retry, heal, prune).
# Defaults apply only where the caller set nothing: environment and flags
# still win, because the caller's arguments come last and the helper takes
# the last of a repeated flag.
{ lib, pkgs, program, configFile, rootFlags, extraArgs, environmentFile, pgBin, defaultKey, pruneRcloneConfigFile }:

let
  # Global flags that take a value, so that the scan for the subcommand can
  # step over their values (`--prefix hosts/db1 prune`).
  valueFlags = [
    "config" "rclone-config" "remote" "prefix" "recipient" "r" "recipients-file" "R" "identity-file" "i"
    "passphrase-file" "dump-dir" "dump-compression" "pg-bin" "state-dir" "backlog-max-size" "metrics-dir"
    "log-target" "low-level-retries"
  ];
  valuePatterns = lib.concatStringsSep "|" (lib.concatMap (f: [ "-${f}" "--${f}" ]) valueFlags);
in
pkgs.writeShellScriptBin "pgarchive" (''
  ${lib.optionalString (environmentFile != null) ''
    set -a
    source ${lib.escapeShellArg environmentFile}
    set +a
  ''}
'' + lib.optionalString (pgBin != null) ''
  export PGARCHIVE_PG_BIN="''${PGARCHIVE_PG_BIN:-${pgBin}}"
'' + lib.optionalString (defaultKey != null) ''
  keyGiven=
  for arg in "$@"; do
    case "$arg" in
      -i|-i=*|--identity-file|--identity-file=*|-identity-file|-identity-file=*|--passphrase-file|--passphrase-file=*|-passphrase-file|-passphrase-file=*) keyGiven=1 ;;
    esac
  done
  if [ -z "$keyGiven" ] && [ -z "''${PGARCHIVE_IDENTITY_FILE:-}" ] && [ -z "''${PGARCHIVE_PASSPHRASE_FILE:-}" ]; then
    export ${defaultKey.var}=${lib.escapeShellArg defaultKey.path}
  fi
'' + lib.optionalString (pruneRcloneConfigFile != null) ''
  # prune deletes, so it gets the prune unit's rclone.conf, which may hold
  # the only credentials allowed to.
  subcommand= skip=
  for arg in "$@"; do
    if [ -n "$skip" ]; then skip=; continue; fi
    case "$arg" in
      ${valuePatterns}) skip=1 ;;
      -*) ;;
      *) subcommand=$arg; break ;;
    esac
  done
  if [ "$subcommand" = prune ]; then
    set -- --rclone-config ${lib.escapeShellArg pruneRcloneConfigFile} "$@"
  fi
'' + ''
  exec ${program} --config ${configFile} ${lib.escapeShellArgs (rootFlags ++ extraArgs)} "$@"
'')
