# How services.pgarchive drives the helper, written with builtins only (no
# nixpkgs lib) so that module.nix, the lib-free tests and the systemd-nspawn
# test all render the very same settings file, credentials and ExecStartPost
# line from one definition.
let
  # Secret-bearing options: each is handed to the unit with LoadCredential= and
  # named in the store-resident settings file only by its credential path.
  secrets = [
    { option = "rcloneConfigFile"; id = "rclone.conf"; key = "rclone-config"; }
    { option = "recipientsFile"; id = "recipients"; key = "recipients-file"; }
    { option = "identityFile"; id = "identity"; key = "identity-file"; }
    { option = "passphraseFile"; id = "passphrase"; key = "passphrase-file"; }
  ];

  setSecrets = cfg: builtins.filter (s: cfg.${s.option} != null) secrets;

  # postgresqlBackup's own naming: ${location}/${db}.sql${compressSuffix}.
  suffixes = { none = ""; gzip = ".gz"; zstd = ".zstd"; };

  # systemd expands %-specifiers and $VARIABLES in Exec lines and splits on
  # whitespace, so anything beyond plain path characters is double-quoted
  # (systemd understands C escapes there, as JSON writes them) with % and $
  # doubled.
  escapeExecArg = arg:
    let s = toString arg; in
    if builtins.match "[A-Za-z0-9_@+=:,./-]+" s != null then s
    else builtins.replaceStrings [ "%" "$" ] [ "%%" "$$" ] (builtins.toJSON s);

  optional = cond: attrs: if cond then attrs else { };
in
rec {
  inherit secrets escapeExecArg;

  # Which of the mutually exclusive key sources are set (the issue asks for
  # exactly one, even though age itself could mix public-key sources).
  keySources = cfg:
    (if cfg.recipients != [ ] then [ "recipients" ] else [ ])
    ++ map (s: s.option) (builtins.filter (s: s.option != "rcloneConfigFile") (setSecrets cfg));

  # The JSON settings (keys are the helper's long flag names). Secrets appear
  # only as $CREDENTIALS_DIRECTORY paths, which the helper expands at run time.
  settings = { cfg, backup }:
    {
      remote = cfg.remote;
      dump-dir = toString backup.location;
      dump-compression = backup.compression;
    }
    // optional (cfg.prefix != "") { inherit (cfg) prefix; }
    // optional (cfg.recipients != [ ]) { inherit (cfg) recipients; }
    // builtins.listToAttrs (map (s: {
      name = s.key;
      value = "$CREDENTIALS_DIRECTORY/${s.id}";
    }) (setSecrets cfg));

  # LoadCredential= entries, ID:PATH.
  credentials = cfg: map (s: "${s.id}:${cfg.${s.option}}") (setSecrets cfg);

  # Flags for root's wrapper: root reads the secret files directly, and flags
  # beat the $CREDENTIALS_DIRECTORY paths of the settings file.
  rootFlags = cfg: builtins.concatLists (map (s: [ "--${s.key}" cfg.${s.option} ]) (setSecrets cfg));

  dumpedDatabases = backup: if backup.backupAll then [ "all" ] else backup.databases;

  unitName = backup: db: if backup.backupAll then "postgresqlBackup" else "postgresqlBackup-${db}";

  dumpPath = backup: db: "${toString backup.location}/${db}.sql${suffixes.${backup.compression}}";

  # extraArgs sit before the subcommand because the helper's flags are global.
  execStartPost = { program, configFile, extraArgs, backup, db }:
    builtins.concatStringsSep " " (map escapeExecArg (
      [ program "--config" configFile ] ++ extraArgs
      ++ [ "archive" "--database" db "--file" (dumpPath backup db) ]
    ));
}
