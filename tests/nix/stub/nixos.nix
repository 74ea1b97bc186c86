# The few NixOS options services.pgarchive reads or writes, declared with the
# same types and merge behaviour as NixOS, so lib.evalModules can run the real
# module without nixpkgs.
{ lib, ... }:

let
  inherit (lib) mkOption types;

  # As in NixOS' systemd unit options: list definitions from several modules
  # concatenate (ExecStartPost, LoadCredential), scalars must agree.
  primitive = types.oneOf [ types.bool types.int types.str ];
  unitOption = types.either (types.listOf primitive) primitive;

  strList = mkOption { type = types.listOf types.str; default = [ ]; };

  # NixOS' unitNameType: specifiers such as %n are allowed in dependencies.
  unitNames = mkOption {
    type = types.listOf (types.strMatching "[a-zA-Z0-9@%:_.\\-]+[.](service|socket|device|mount|automount|swap|target|path|timer|scope|slice)");
    default = [ ];
  };

  service = types.submodule {
    options = {
      description = mkOption { type = types.singleLineStr; default = ""; };
      documentation = strList;
      script = mkOption { type = types.lines; default = ""; };
      startAt = mkOption { type = types.either types.str (types.listOf types.str); default = [ ]; };
      wants = strList;
      after = strList;
      requires = strList;
      wantedBy = strList;
      onFailure = unitNames;
      onSuccess = unitNames;
      serviceConfig = mkOption { type = types.attrsOf unitOption; default = { }; };
    };
  };

  timer = types.submodule {
    options = {
      description = mkOption { type = types.singleLineStr; default = ""; };
      wantedBy = strList;
      timerConfig = mkOption { type = types.attrsOf unitOption; default = { }; };
    };
  };
in
{
  options = {
    assertions = mkOption { type = types.listOf types.unspecified; default = [ ]; };
    warnings = mkOption { type = types.listOf types.str; default = [ ]; };
    environment.systemPackages = mkOption { type = types.listOf types.package; default = [ ]; };
    systemd.services = mkOption { type = types.attrsOf service; default = { }; };
    systemd.timers = mkOption { type = types.attrsOf timer; default = { }; };
    systemd.tmpfiles.rules = strList;
    users.groups = mkOption {
      type = types.attrsOf (types.submodule {
        options.members = strList;
        options.gid = mkOption { type = types.nullOr types.int; default = null; };
      });
      default = { };
    };
  };
}
