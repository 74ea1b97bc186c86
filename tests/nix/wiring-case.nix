# Renders one case through nix/wiring.nix, without nixpkgs: what the module
# would put in the settings file, LoadCredential= and ExecStartPost= lines.
# `case` is JSON: { cfg, backup, program, configFile }, with every option of
# cfg spelled out (the module's defaults are not applied here).
{ case }:

let
  w = import ../../nix/wiring.nix;
  c = builtins.fromJSON case;
in
{
  settingsJSON = builtins.toJSON (w.settings { inherit (c) cfg backup; });
  credentials = w.credentials c.cfg;
  rootSettingsJSON = builtins.toJSON (w.rootSettings { inherit (c) cfg backup; });
  keySources = w.keySources c.cfg;
  units = map (db: {
    inherit db;
    name = w.unitName c.backup db;
    dumpPath = w.dumpPath c.backup db;
    execStartPost = w.execStartPost {
      inherit (c) program configFile;
      inherit (c.cfg) extraArgs;
      inherit (c) backup;
      inherit db;
    };
  }) (w.dumpedDatabases c.backup);
}
