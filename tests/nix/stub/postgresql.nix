# Stand-in for nixpkgs' services.postgresql, as far as services.pgarchive
# reads it: like NixOS, `package` has no default of its own and gets one only
# while the server is enabled, so reading it on a host without PostgreSQL
# fails evaluation here just as it would there. The default is deliberately
# not pkgs.postgresql (as in NixOS, where it follows system.stateVersion), so
# tests can tell which of the two the module picked.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption types;
  cfg = config.services.postgresql;
in
{
  options.services.postgresql = {
    enable = lib.mkEnableOption "PostgreSQL";
    package = mkOption { type = types.package; };
    dataDir = mkOption { type = types.str; default = "/var/lib/postgresql/16"; };
    # As in NixOS: postgresql.conf's settings, merged per name.
    settings = mkOption {
      type = types.submodule { freeformType = types.attrsOf (types.oneOf [ types.bool types.float types.int types.str ]); };
      default = { };
    };
  };

  config = lib.mkIf cfg.enable {
    services.postgresql.package = lib.mkDefault pkgs.postgresql_16;
  };
}
