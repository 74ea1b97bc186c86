# How services.pgarchive drives the helper, written with builtins only (no
# nixpkgs lib) so that the module, the lib-free tests and the systemd-nspawn
# test all render the very same settings files, credentials and Exec lines
# from one definition.
#
# Nothing here parses what the user wrote: durations, keep rules, database
# names and keys go into the settings files as given, and
# `pgarchive check-config` validates each file at build time with the
# parsers the commands use.
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
  nonEmpty = name: list: optional (list != [ ]) { ${name} = list; };
in
rec {
  inherit secrets escapeExecArg;

  # Which of the mutually exclusive key sources are set (the issue asks for
  # exactly one, even though age itself could mix public-key sources).
  keySources = cfg:
    (if cfg.recipients != [ ] then [ "recipients" ] else [ ])
    ++ map (s: s.option) (builtins.filter (s: !(builtins.elem s.option notKeys)) (setSecrets cfg));

  # The archive units' JSON settings (keys are the helper's long flag
  # names). Secrets appear only as paths made by secretPath: by default their
  # $CREDENTIALS_DIRECTORY path, which the helper expands at run time; root's
  # wrapper gets the files themselves. The lifecycle options are read with
  # `or`, so that a cfg without them (the lib-free tests) renders the
  # settings of a host without backlog or metrics.
  settingsWith = secretPath: { cfg, backup }:
    readSettings {
      inherit (cfg) remote prefix;
      rcloneConfigFile = null;
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
    // builtins.listToAttrs (map (s: { name = s.key; value = secretPath s; }) (setSecrets cfg));

  credentialPath = s: "$CREDENTIALS_DIRECTORY/${s.id}";

  settings = settingsWith credentialPath;

  # What root's wrapper reads on an archiving host: the same settings, with
  # the secret files themselves (root reads them directly, outside any unit).
  rootSettings = { cfg, backup }: settingsWith (s: toString cfg.${s.option}) { inherit cfg backup; };

  # What every command needs to find the archives: the settings file of
  # the drill, prune, status and summary units, and of root's wrapper on a
  # host that archives nothing. The metrics directory goes to the units that
  # write metrics, the backlog's directory to those that report or upload
  # it. Trusted signers are public keys: they may live in the store.
  # rcloneConfigFile is written as given: a credential path for units, the
  # file for root.
  readSettings = { remote, prefix, rcloneConfigFile, metricsDir ? null, stateDir ? null, trustedSigners ? [ ] }:
    { inherit remote; }
    // nonEmpty "trusted-signers" trustedSigners
    // optional (prefix != "") { inherit prefix; }
    // optional (rcloneConfigFile != null) { rclone-config = rcloneConfigFile; }
    // optional (stateDir != null) { state-dir = stateDir; }
    // optional (metricsDir != null) { metrics-dir = metricsDir; };

  # LoadCredential= entries, ID:PATH.
  credentials = cfg: map (s: "${s.id}:${toString cfg.${s.option}}") (setSecrets cfg);

  dumpedDatabases = backup: if backup.backupAll then [ "all" ] else backup.databases;

  unitName = backup: db: if backup.backupAll then "postgresqlBackup" else "postgresqlBackup-${db}";

  dumpPath = backup: db: "${toString backup.location}/${db}.sql${suffixes.${backup.compression}}";

  # An Exec line: the program, its settings file (if any), the extra global
  # arguments, the command and its arguments, each escaped; rawArgs are
  # appended as they are, for systemd specifiers such as %i.
  exec = { program, configFile ? null, extraArgs, args, rawArgs ? [ ] }:
    builtins.concatStringsSep " " (
      map escapeExecArg (
        [ program ] ++ (if configFile == null then [ ] else [ "--config" configFile ])
        ++ extraArgs ++ args
      )
      ++ rawArgs
    );

  # heal: after the upload, copy this database's archives to the upstreams
  # that lack them.
  execStartPost = { program, configFile, extraArgs, backup, db, heal ? false }:
    exec {
      inherit program configFile extraArgs;
      args = [ "archive" "--database" db "--file" (dumpPath backup db) ] ++ (if heal then [ "--heal" ] else [ ]);
    };

  # The drill unit's secrets (services.pgarchive.drill.*), with the settings
  # key that names each one.
  drillSecrets = [
    { option = "rcloneConfigFile"; id = "rclone.conf"; key = "rclone-config"; }
    { option = "identityFile"; id = "identity"; key = "identity-file"; isKey = true; }
    { option = "passphraseFile"; id = "passphrase"; key = "passphrase-file"; isKey = true; }
  ];

  drillKeySources = drill: map (s: s.option) (builtins.filter (s: s ? isKey && drill.${s.option} != null) drillSecrets);

  drillCredentials = drill: map (s: "${s.id}:${toString drill.${s.option}}") (builtins.filter (s: drill.${s.option} != null) drillSecrets);

  # The drill's decryption key as settings, by credential path (or, for
  # root, by the file itself).
  drillKeySettings = secretPath: drill:
    builtins.listToAttrs (map (s: { name = s.key; value = secretPath s; })
      (builtins.filter (s: s ? isKey && drill.${s.option} != null) drillSecrets));

  # The commands' own sections (see `pgarchive --help`): what each scheduled
  # unit runs, checked by check-config like the rest.
  drillSection = { drill, checksFile }:
    { max-age = drill.maxAge; }
    // nonEmpty "database" drill.databases
    // optional (checksFile != null) { checks-file = toString checksFile; };

  statusSection = status: { max-age = status.maxAge; } // nonEmpty "database" status.databases;

  keepCounts = [ "last" "hourly" "daily" "weekly" "monthly" "yearly" ];

  # prune's keep rules; null rules are left out (off).
  pruneSection = { prune, rcloneConfigFile ? null }:
    builtins.listToAttrs (map (r: { name = "keep-${r}"; value = prune.keep.${r}; })
      (builtins.filter (r: prune.keep.${r} != null) keepCounts))
    // optional (prune.keep.within != null) { keep-within = prune.keep.within; }
    // nonEmpty "database" prune.databases
    // optional (rcloneConfigFile != null) { rclone-config = rcloneConfigFile; };
}
