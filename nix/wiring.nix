# How services.pgarchive drives the helper, written with builtins only (no
# nixpkgs lib) so that module.nix, the lib-free tests and the systemd-nspawn
# test all render the very same settings file, credentials and ExecStartPost
# line from one definition; the ExecStart lines of the drill, prune and notify
# units come from here too.
let
  # Secret-bearing options: each is handed to the unit with LoadCredential= and
  # named in the store-resident settings file only by its credential path.
  secrets = [
    { option = "rcloneConfigFile"; id = "rclone.conf"; key = "rclone-config"; }
    { option = "recipientsFile"; id = "recipients"; key = "recipients-file"; }
    { option = "identityFile"; id = "identity"; key = "identity-file"; }
    { option = "passphraseFile"; id = "passphrase"; key = "passphrase-file"; }
    { option = "signingKeyFile"; id = "signing-key"; key = "signing-key"; }
  ];

  # Secrets that are no encryption key.
  notKeys = [ "rcloneConfigFile" "signingKeyFile" ];

  setSecrets = cfg: builtins.filter (s: (cfg.${s.option} or null) != null) secrets;

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
    ++ map (s: s.option) (builtins.filter (s: !(builtins.elem s.option notKeys)) (setSecrets cfg));

  # The JSON settings (keys are the helper's long flag names). Secrets appear
  # only as $CREDENTIALS_DIRECTORY paths, which the helper expands at run time.
  # The lifecycle options are read with `or`, so that a cfg without them (the
  # lib-free tests) renders the settings of a host without backlog or metrics.
  settings = { cfg, backup }:
    readSettings {
      inherit (cfg) remote prefix rcloneConfigFile;
      stateDir = cfg.stateDir or null;
      metricsDir = cfg.metrics.textfileDirectory or null;
      trustedSigners = cfg.trustedSigners or [ ];
    }
    // {
      dump-dir = toString backup.location;
      dump-compression = backup.compression;
    }
    // optional ((cfg.stateDir or null) != null && (cfg.backlogMaxSize or null) != null) { backlog-max-size = cfg.backlogMaxSize; }
    // optional (cfg.recipients != [ ]) { inherit (cfg) recipients; }
    // builtins.listToAttrs (map (s: {
      name = s.key;
      value = "$CREDENTIALS_DIRECTORY/${s.id}";
    }) (setSecrets cfg));

  # What every subcommand needs to find the archives: the settings file of
  # the drill, prune and summary units, and of root's wrapper on a host that
  # archives nothing. No key: the read side passes its decryption key on the
  # command line. The metrics directory goes to the units that write metrics,
  # the backlog's directory to those that report or upload it.
  # Trusted signers are public keys: they may live in the store.
  readSettings = { remote, prefix, rcloneConfigFile, metricsDir ? null, stateDir ? null, trustedSigners ? [ ] }:
    { inherit remote; }
    // optional (trustedSigners != [ ]) { trusted-signers = trustedSigners; }
    // optional (prefix != "") { inherit prefix; }
    // optional (rcloneConfigFile != null) { rclone-config = "$CREDENTIALS_DIRECTORY/rclone.conf"; }
    // optional (stateDir != null) { state-dir = stateDir; }
    // optional (metricsDir != null) { metrics-dir = metricsDir; };

  # LoadCredential= entries, ID:PATH.
  credentials = cfg: map (s: "${s.id}:${cfg.${s.option}}") (setSecrets cfg);

  # Flags for root's wrapper: root reads the secret files directly, and flags
  # beat the $CREDENTIALS_DIRECTORY paths of the settings file.
  rootFlags = cfg: builtins.concatLists (map (s: [ "--${s.key}" cfg.${s.option} ]) (setSecrets cfg));

  dumpedDatabases = backup: if backup.backupAll then [ "all" ] else backup.databases;

  unitName = backup: db: if backup.backupAll then "postgresqlBackup" else "postgresqlBackup-${db}";

  dumpPath = backup: db: "${toString backup.location}/${db}.sql${suffixes.${backup.compression}}";

  # Root's wrapper on a host that only runs the drill: just the rclone.conf.
  readRootFlags = rcloneConfigFile:
    if rcloneConfigFile == null then [ ] else [ "--rclone-config" rcloneConfigFile ];

  # The drill unit's secrets (services.pgarchive.drill.*), with the flag that
  # names each one on the drill command line.
  drillSecrets = [
    { option = "rcloneConfigFile"; id = "rclone.conf"; }
    { option = "identityFile"; id = "identity"; flag = "--identity-file"; }
    { option = "passphraseFile"; id = "passphrase"; flag = "--passphrase-file"; }
  ];

  drillKeySources = drill: map (s: s.option) (builtins.filter (s: s ? flag && drill.${s.option} != null) drillSecrets);

  drillCredentials = drill: map (s: "${s.id}:${drill.${s.option}}") (builtins.filter (s: drill.${s.option} != null) drillSecrets);

  # ExecStart of pgarchive-drill. The key is named by its credential path,
  # which systemd itself expands (${CREDENTIALS_DIRECTORY} is set for Exec
  # lines of units with LoadCredential=), so the helper gets a plain path.
  # pgBin is a global flag, like the settings file, so it goes first.
  drillExecStart = { program, configFile, extraArgs, pgBin, drill, checksFile }:
    let
      key = builtins.filter (s: s ? flag && drill.${s.option} != null) drillSecrets;
    in
    builtins.concatStringsSep " " (
      map escapeExecArg (
        [ program "--config" configFile ] ++ extraArgs ++ [ "--pg-bin" pgBin "drill" ]
        ++ builtins.concatMap (db: [ "--database" db ]) drill.databases
      )
      ++ builtins.concatMap (s: [ s.flag "\${CREDENTIALS_DIRECTORY}/${s.id}" ]) key
      ++ map escapeExecArg (
        [ "--max-age" drill.maxAge ]
        ++ (if checksFile == null then [ ] else [ "--checks-file" checksFile ])
      )
    );

  # extraArgs sit before the subcommand because the helper's flags are global.
  # heal: after the upload, copy this database's archives to the upstreams
  # that lack them.
  execStartPost = { program, configFile, extraArgs, backup, db, heal ? false }:
    builtins.concatStringsSep " " (map escapeExecArg (
      [ program "--config" configFile ] ++ extraArgs
      ++ [ "archive" "--database" db "--file" (dumpPath backup db) ]
      ++ (if heal then [ "--heal" ] else [ ])
    ));

  # services.pgarchive.prune.keep, in the order of the helper's --help; null
  # rules are left to the helper (off).
  keepCounts = [ "last" "hourly" "daily" "weekly" "monthly" "yearly" ];

  keepArgs = keep:
    builtins.concatMap (r: if keep.${r} == null then [ ] else [ "--keep-${r}" (toString keep.${r}) ]) keepCounts
    ++ (if keep.within == null then [ ] else [ "--keep-within" keep.within ]);

  # ExecStart of pgarchive-prune: its own settings file (and so its own
  # rclone.conf credential), the databases (none: all) and the keep rules.
  pruneExecStart = { program, configFile, extraArgs, prune }:
    builtins.concatStringsSep " " (map escapeExecArg (
      [ program "--config" configFile ] ++ extraArgs ++ [ "prune" ]
      ++ builtins.concatMap (db: [ "--database" db ]) prune.databases
      ++ keepArgs prune.keep
    ));

  # ExecStart of pgarchive-status: the databases that must exist (none:
  # every database found) and the age past which the newest is stale.
  statusExecStart = { program, configFile, extraArgs, status }:
    builtins.concatStringsSep " " (map escapeExecArg (
      [ program "--config" configFile ] ++ extraArgs ++ [ "status" ]
      ++ builtins.concatMap (db: [ "--database" db ]) status.databases
      ++ [ "--max-age" status.maxAge ]
    ));

  # ExecStart of the notify units. event is failure or success for the
  # OnFailure=/OnSuccess= templates, whose instance (%i, left for systemd to
  # expand) is the unit that finished; summary for the daily report, the
  # only one that reads the remote and so the only one with a settings file.
  # A webhook file is a credential; a plain URL is the caller's choice to put
  # it in the store (and on the command line).
  notifyExecStart = { program, extraArgs, notify, event, configFile ? null }:
    builtins.concatStringsSep " " (
      map escapeExecArg (
        [ program ] ++ (if configFile == null then [ ] else [ "--config" configFile ])
        ++ extraArgs ++ [ "notify" "--event" event ]
      )
      ++ (if event == "summary" then [ ] else [ "--unit" "%i" ])
      ++ (if notify.webhookUrlFile != null
          then [ "--webhook-url-file" "\${CREDENTIALS_DIRECTORY}/webhook-url" ]
          else [ "--webhook-url" (escapeExecArg notify.webhookUrl) ])
      ++ map escapeExecArg (
        [ "--format" notify.format ]
        ++ (if event == "summary" then [ ] else [ "--journal-lines" (toString notify.journalLines) ])
      )
    );
}
