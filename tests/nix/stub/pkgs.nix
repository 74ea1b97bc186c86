# Just enough of a nixpkgs package set for flake.nix and nix/module.nix: fake
# derivations that keep their inputs (text, env, build command, Go arguments)
# so tests can inspect what would be built without building anything.
{ lib, system ? "x86_64-linux" }:

let
  fakeDrv = name: attrs: {
    type = "derivation";
    inherit name;
    outPath = "${builtins.storeDir}/${builtins.substring 0 32 (builtins.hashString "sha256" (name + builtins.toJSON attrs))}-${name}";
  } // attrs;

  self = {
    inherit lib;
    stdenv = {
      hostPlatform.system = system;
      buildPlatform = { inherit system; canExecute = _: true; };
    };
    writeShellScriptBin = name: text: fakeDrv name { inherit text; };
    writeText = name: text: fakeDrv name { inherit text; };
    postgresql_16 = fakeDrv "postgresql-16.11" { };
    postgresql_17 = fakeDrv "postgresql-17.7" { };
    postgresql = self.postgresql_17;
    runCommand = name: env: buildCommand: fakeDrv name { inherit env buildCommand; };
    # src is left out: forcing it would copy the repository into a store.
    buildGo125Module = args: fakeDrv "${args.pname}-${args.version}" { goArgs = removeAttrs args [ "src" ]; inherit system; };
    versionCheckHook = fakeDrv "version-check-hook" { };
    callPackage = fn: args:
      let f = import fn;
      in f (builtins.intersectAttrs (builtins.functionArgs f) self // args);
  };
in
self
