# Evaluates the flake's outputs and its NixOS module with the real
# lib.evalModules of nixpkgs' lib, stubbing only nixpkgs' packages and the
# NixOS options the module touches. `cases` is a JSON list of modules setting
# services.*; like NixOS' toplevel, a failed assertion aborts evaluation with
# "Failed assertions:" and the messages.
{ libDir, cases ? "[]" }:

let
  lib = import (/. + libDir);
  system = "x86_64-linux";
  nixpkgs = {
    inherit lib;
    legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (system: import ./pkgs.nix { inherit lib system; });
  };
  pkgs = nixpkgs.legacyPackages.${system};

  flake = import ../../../flake.nix;
  # What Nix passes as `self`: the outputs plus the source's git metadata.
  self = flake.outputs { inherit self nixpkgs; } // {
    lastModifiedDate = "20260102030405";
    shortRev = "0123abc";
  };

  eval = case: (lib.evalModules {
    # Cases predating signatures leave trust out; their readers accept
    # unsigned archives by default here (mkDefault: a case may say otherwise).
    # module-eval-check.nix and TestAuthenticityModule cover the assertion.
    # Both names of the module, as a user may import them: one module.
    modules = [ ./nixos.nix ./postgresql.nix ./postgresql-backup.nix self.nixosModules.default self.nixosModules.pgarchive case { _module.args.pkgs = pkgs; }
      { services.pgarchive.allowUnsigned = lib.mkDefault true; } ];
  }).config;

  checked = config:
    let failed = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
    in if failed == [ ] then config
       else throw "\nFailed assertions:\n${lib.concatMapStrings (m: "- ${m}\n") failed}";

  settingsFile = f: { path = "${f}"; json = f.env.json; build = f.buildCommand; };

  summary = config: let drill = config.services.pgarchive.drill; in {
    units = lib.mapAttrs (_: s: { inherit (s) description documentation wants after requires onFailure onSuccess serviceConfig; }) config.systemd.services;
    tmpfiles = config.systemd.tmpfiles.rules;
    groups = builtins.attrNames config.users.groups;
    prune = settingsFile config.services.pgarchive.prune.configFile;
    notifySummary = settingsFile config.services.pgarchive.notify.summary.configFile;
    status = settingsFile config.services.pgarchive.status.configFile;
    report = settingsFile config.services.pgarchive.report.configFile;
    prometheusRuleFiles = map toString config.services.prometheus.ruleFiles;
    root = settingsFile config.services.pgarchive.rootConfigFile;
    timers = lib.mapAttrs (_: t: { inherit (t) description wantedBy timerConfig; }) config.systemd.timers;
    drill = {
      configPath = "${drill.configFile}";
      configJSON = drill.configFile.env.json;
      configBuild = drill.configFile.buildCommand;
      checksPath = if drill.checksFile == null then null else "${drill.checksFile}";
      checksJSON = if drill.checksFile == null then null else drill.checksFile.text;
      postgresqlPath = "${drill.postgresqlPackage}";
    };
    packagePath = "${config.services.pgarchive.package}";
    configPath = "${config.services.pgarchive.configFile}";
    configJSON = config.services.pgarchive.configFile.env.json;
    configBuild = config.services.pgarchive.configFile.buildCommand;
    wrappers = map (p: { inherit (p) name text; }) config.environment.systemPackages;
    postgresqlSettings = config.services.postgresql.settings;
  };

  names = lib.mapAttrs (_: v: if builtins.isAttrs v then lib.mapAttrs (_: builtins.attrNames) v else null);
in
{
  flake = {
    inputs = flake.inputs;
    outputs = lib.mapAttrs (_: v: builtins.attrNames v) (removeAttrs self [ "lastModifiedDate" "shortRev" ]);
    perSystem = names { inherit (self) packages checks devShells; };
    package = {
      inherit (self.packages.${system}.default) name goArgs;
      path = self.packages.${system}.default.outPath;
      pgarchivePath = self.packages.${system}.pgarchive.outPath;
    };
    overlay = (self.overlays.default pkgs pkgs).pgarchive.name;
    moduleIsFunction = builtins.isFunction self.nixosModules.default && builtins.isFunction self.nixosModules.pgarchive;
  };
  cases = map (case: summary (checked (eval case))) (builtins.fromJSON cases);
}
