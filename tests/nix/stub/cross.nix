# A cross-built system: the host (x86_64-linux) cannot run on the build
# platform (aarch64-linux here), so the settings files must be checked by
# the build platform's pgarchive, as sops-nix runs the build host's checker.
# Yields both packages' paths and the archive settings' build command.
{ libDir }:

let
  lib = import (/. + libDir);
  hostPkgs = import ./pkgs.nix { inherit lib; system = "x86_64-linux"; };
  pkgs = hostPkgs // {
    stdenv = hostPkgs.stdenv // { buildPlatform = { system = "aarch64-linux"; canExecute = _: false; }; };
  };
  nixpkgs = {
    inherit lib;
    legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (system: import ./pkgs.nix { inherit lib system; });
  };
  flake = import ../../../flake.nix;
  self = flake.outputs { inherit self nixpkgs; } // { lastModifiedDate = "20260102030405"; shortRev = "0123abc"; };
  config = (lib.evalModules {
    modules = [ ./nixos.nix ./postgresql.nix ./postgresql-backup.nix self.nixosModules.default { _module.args.pkgs = pkgs; }
      {
        services.postgresqlBackup = { enable = true; databases = [ "db1" ]; };
        services.pgarchive = { enable = true; recipients = [ "age1x" ]; rcloneConfigFile = "/run/secrets/rclone.conf"; };
      } ];
  }).config;
in
{
  host = "${self.packages.x86_64-linux.default}";
  build = "${self.packages.aarch64-linux.default}";
  command = config.services.pgarchive.configFile.buildCommand;
}
