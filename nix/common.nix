# What the module's files share: the build-time checked settings files and
# the option types for paths. Imported with the module's lib, pkgs and cfg.
{ lib, pkgs, cfg }:

let
  inStore = p: p == builtins.storeDir || lib.hasPrefix "${builtins.storeDir}/" p;

  # An absolute path that systemd takes as one word in LoadCredential=,
  # EnvironmentFile= and ReadWritePaths=, and tmpfiles in a rule: no
  # whitespace (it splits the list), no % (a specifier: with %z, systemd
  # silently drops the credential), no quotes or backslashes (escapes).
  plainAbsolute = p: builtins.match "/[^[:space:]%\"'\\\\]*" p != null;

  pathType = { name, description, extraCheck ? (_: true) }: lib.mkOptionType {
    inherit name description;
    descriptionClass = "noun";
    check = x: (builtins.isString x || builtins.isPath x)
      && plainAbsolute (toString x) && !inStore (toString x) && extraCheck (toString x);
    # Equal definitions merge; a path literal becomes its string, never a
    # copy in the store.
    merge = loc: defs: toString (lib.mergeEqualOption loc defs);
  };
in
rec {
  program = "${cfg.package}/bin/pgarchive";

  # Validated at build time, as sops-nix validates its manifest, so that a bad
  # setting fails nixos-rebuild rather than the first nightly backup. A cross
  # build runs the build platform's pgarchive (cfg.buildPlatformPackage),
  # as sops-nix runs the build host's checker.
  checker =
    if pkgs.stdenv.buildPlatform.canExecute pkgs.stdenv.hostPlatform then cfg.package
    else cfg.buildPlatformPackage;

  checkedSettings = name: settings: pkgs.runCommand name {
    json = builtins.toJSON settings;
    passAsFile = [ "json" ];
    preferLocalBuild = true;
  } ''
    ${checker}/bin/pgarchive check-config "$jsonPath"
    cp "$jsonPath" "$out"
  '';

  # The settings file of a unit that reads the store: where the archives
  # are, its rclone.conf by credential path, the metrics or backlog
  # directory where it uses one, and its own section.
  readerSettings = { name, rcloneConfigFile, metricsDir ? null, stateDir ? null, section ? { } }:
    checkedSettings name ((import ./wiring.nix).readSettings {
      inherit (cfg) remote prefix trustedSigners;
      inherit metricsDir stateDir;
      rcloneConfigFile = if rcloneConfigFile == null then null else "$CREDENTIALS_DIRECTORY/rclone.conf";
    } // section);

  types = {
    # A secret read at run time (sops-nix's pathNotInStore, stricter): a
    # string path, never a file in the world-readable store.
    secretPath = pathType {
      name = "secretPath";
      description = "absolute path of a file read at run time, outside the Nix store (e.g. config.sops.secrets.<name>.path or config.age.secrets.<name>.path), without whitespace, %, quotes or backslashes";
    };

    # A directory the units write (backlog, metrics).
    statePath = pathType {
      name = "statePath";
      description = "absolute path outside the read-only Nix store, without whitespace, %, quotes or backslashes";
    };
  };

  # A secret file option; receiver says which unit gets it.
  secretOption = { what, example, receiver }: lib.mkOption {
    type = lib.types.nullOr types.secretPath;
    default = null;
    inherit example;
    description = ''
      ${what}

      A string path read at run time, e.g. from sops-nix or agenix; it must
      not be in the Nix store. ${receiver} receives it with
      `LoadCredential=`, readable only by the unit's user while it runs.
    '';
  };

  # The read-only option exposing a unit's build-time checked settings file.
  settingsOption = { file, what }: lib.mkOption {
    type = lib.types.package;
    readOnly = true;
    internal = true;
    default = file;
    description = "The ${what} build-time validated settings file.";
  };

  # A unit that reads the store needs an rclone.conf from somewhere.
  rcloneAssertion = { option, value, who, extra ? "" }: {
    assertion = value != null || cfg.environmentFile != null;
    message = "services.pgarchive.${option} is not set: ${who} needs an rclone.conf that defines ${cfg.remote}${extra} (set services.pgarchive.rcloneConfigFile or services.pgarchive.${option}, or RCLONE_CONFIG in services.pgarchive.environmentFile).";
  };

  # What pgarchive's own units share, whatever their job: the network for
  # rclone and webhooks, and a sandbox (hardening.nix).
  hardening = import ./hardening.nix;
}
