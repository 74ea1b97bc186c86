# services.pgarchive's authenticity options: the archive units sign every
# manifest with signingKeyFile; the units that read the store (drill, prune,
# status, the daily summary, and root's wrapper) trust only trustedSigners.
# wiring.nix carries both into the settings files and credentials.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption types;
  cfg = config.services.pgarchive;
  common = import ./common.nix { inherit lib pkgs cfg; };
  readers = lib.filter (r: r.on) [
    { on = cfg.drill.enable; name = "drill"; }
    { on = cfg.prune.enable; name = "prune"; }
    { on = cfg.status.enable; name = "status"; }
  ];
in
{
  options.services.pgarchive = {
    signingKeyFile = mkOption {
      type = types.nullOr common.types.secretPath;
      default = null;
      example = "/etc/ssh/ssh_host_ed25519_key";
      description = ''
        OpenSSH ed25519 private key that signs every archive's manifest
        (`<archive>.manifest.json.sig`, checkable with stock
        `ssh-keygen -Y verify -n pgarchive`), e.g. the host's own SSH host
        key or a sops-nix/agenix secret. A string path read at run time, not
        in the Nix store; the backup units receive it with `LoadCredential=`.
        Readers trust archives signed by it once its public half is in
        {option}`services.pgarchive.trustedSigners` on their host.
      '';
    };

    trustedSigners = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI... root@db1" ];
      description = ''
        Public keys (`ssh-ed25519 AAAA… comment` lines) whose signatures the
        drill, prune, status and summary units and root's wrapper accept.
        An archive without a valid signature by one of them is UNTRUSTED:
        never restored, drilled, counted toward retention or freshness, or
        copied by heal. Public, so they may live in the store. List two keys
        while rotating a signing key. Each line is checked when the settings
        files are built (`pgarchive check-config`).
      '';
    };

    allowUnsigned = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Run the drill, prune and status units without
        {option}`services.pgarchive.trustedSigners`. They then believe
        whatever the store holds: anyone with upload rights can plant an
        archive that the drill restores, that status counts as fresh, and
        that makes prune delete the genuine ones.
      '';
    };
  };

  config = lib.mkIf (cfg.enable || readers != [ ]) {
    assertions = [
      {
        assertion = readers == [ ] || cfg.trustedSigners != [ ] || cfg.allowUnsigned;
        message = "services.pgarchive: ${lib.concatMapStringsSep ", " (r: r.name) readers} would trust any archive in the store: anyone with upload rights (a leaked rclone.conf) could plant one that the drill restores, status counts as fresh and prune keeps instead of the genuine ones. Set services.pgarchive.trustedSigners to the public half of the archiving host's services.pgarchive.signingKeyFile (e.g. its /etc/ssh/ssh_host_ed25519_key.pub), or services.pgarchive.allowUnsigned = true to accept that risk.";
      }
      {
        assertion = cfg.signingKeyFile == null || cfg.enable;
        message = "services.pgarchive.signingKeyFile signs what services.pgarchive.enable archives; it is set on a host that archives nothing.";
      }
    ];
  };
}
