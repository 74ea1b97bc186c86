# What module.nix, lifecycle.nix and notify.nix share: the build-time
# checked settings files and the assertion that keeps secrets out of the store.
{ lib, pkgs, cfg }:

rec {
  program = "${cfg.package}/bin/pgarchive";

  # Validated at build time, as sops-nix validates its manifest, so that a bad
  # setting fails nixos-rebuild rather than the first nightly backup. A cross
  # build cannot run the target's binary, so it skips the check.
  checkedSettings = name: settings: pkgs.runCommand name {
    json = builtins.toJSON settings;
    passAsFile = [ "json" ];
    preferLocalBuild = true;
  } (lib.optionalString (pkgs.stdenv.buildPlatform.canExecute pkgs.stdenv.hostPlatform) ''
    ${program} check-config "$jsonPath"
  '' + ''
    cp "$jsonPath" "$out"
  '');

  inStore = p: p == builtins.storeDir || lib.hasPrefix "${builtins.storeDir}/" p;

  storeAssertion = name: value: {
    assertion = value == null || !inStore value;
    message = "${name} is ${toString value}, inside the world-readable Nix store: secrets must stay out of it. Point it at a file read at run time (e.g. config.sops.secrets.<name>.path or config.age.secrets.<name>.path).";
  };

  # Go's time.ParseDuration, less the negative values the drill and status
  # reject (--max-age).
  isDuration = d: builtins.match "[+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)" d != null;

  # For directories the units write (backlog, metrics).
  pathAssertion = name: value: {
    assertion = value == null || (lib.hasPrefix "/" value && !inStore value);
    message = "${name} is ${toString value}: it must be an absolute path outside the read-only Nix store.";
  };
}
