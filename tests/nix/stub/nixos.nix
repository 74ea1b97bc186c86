# The few NixOS options services.pgarchive reads or writes, declared with the
# same types and merge behaviour as NixOS, so lib.evalModules can run the real
# module without nixpkgs.
{ lib, ... }:

let
  inherit (lib) mkOption types;

  # As NixOS' systemd unitOption (nixos/lib/systemd-types.nix): as soon as
  # any definition is a list, all of them concatenate (a user's scalar
  # LoadCredential joins the module's list); otherwise they must agree.
  primitive = types.oneOf [ types.bool types.int types.str ];
  unitOption = lib.mkOptionType {
    name = "systemd option";
    description = "systemd unit option (a value or a list of values)";
    check = v: primitive.check v || (builtins.isList v && lib.all primitive.check v);
    merge = loc: defs:
      let defs' = lib.filterOverrides defs; in
      if lib.any (d: builtins.isList d.value) defs'
      then lib.concatMap (d: lib.toList d.value) defs'
      else lib.mergeEqualOption loc defs';
  };

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
      partOf = strList;
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
    # As NixOS' prometheus module: rule files, each checked by promtool.
    services.prometheus.ruleFiles = mkOption { type = types.listOf types.path; default = [ ]; };
    services.prometheus.rules = strList;
    users.groups = mkOption {
      type = types.attrsOf (types.submodule {
        options.members = strList;
        options.gid = mkOption { type = types.nullOr types.int; default = null; };
      });
      default = { };
    };
  };
}
