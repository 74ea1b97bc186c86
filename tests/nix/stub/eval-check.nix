# Evaluates nix/module-eval-check.nix (the flake's module-eval check) with
# the real lib.evalModules in place of nixosSystem and the stubs of eval.nix:
# every Nix-level assert of the check runs (which cases evaluate cleanly,
# which fail with which message), though not its shell script, which greps
# unit files only NixOS renders. Yields the check's derivation name.
{ libDir }:

let
  lib = import (/. + libDir);
  pkgs = import ./pkgs.nix { inherit lib; };

  # Options the check sets that the stubs do not declare.
  nixosRest = { lib, ... }: {
    options.boot.isContainer = lib.mkOption { type = lib.types.bool; default = false; };
    options.system.stateVersion = lib.mkOption { type = lib.types.str; default = ""; };
  };

  nixpkgs = {
    lib = lib // {
      nixosSystem = { system, modules }: lib.evalModules {
        modules = [ ./nixos.nix ./postgresql.nix ./postgresql-backup.nix nixosRest { _module.args.pkgs = pkgs; } ] ++ modules;
      };
    };
  };

  module = import ../../../nix/module.nix { flakePackages.x86_64-linux.default = pkgs.writeText "pgarchive" ""; };
in
(import ../../../nix/module-eval-check.nix { inherit nixpkgs pkgs module; system = "x86_64-linux"; }).name
