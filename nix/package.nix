{
  lib,
  buildGo125Module,
  versionCheckHook,
  version ? "0-unstable",
  # Commit the binary reports with --version; null for builds outside git.
  rev ? null,
}:

buildGo125Module {
  pname = "pgarchive";
  inherit version;

  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions (map (p: ../. + "/${p}") (import ./source.nix));
  };

  # Recompute with nix/update-vendor-hash.sh whenever go.mod or go.sum change;
  # tests/nix fails while this is stale.
  vendorHash = "sha256-huPST5k3hZn5sCoElxTY/XzkEtT7ICyuSG9Y54MuMsU=";

  subPackages = [ "cmd/pgarchive" ];

  # rclone's backends need no cgo; a static binary also runs in minimal units.
  env.CGO_ENABLED = 0;

  ldflags = [
    "-s"
    "-w"
    "-X main.version=${version}${lib.optionalString (rev != null) "+${rev}"}"
  ];

  # The test suite needs PostgreSQL, an S3 server, journald and systemd, which the
  # build sandbox lacks; .ci/run runs it against the real servers instead.
  doCheck = false;

  nativeInstallCheckInputs = [ versionCheckHook ];
  doInstallCheck = true;

  meta = {
    description = "Encrypt PostgreSQL dumps with age and store them on every upstream of an rclone remote";
    longDescription = ''
      pgarchive runs after each pg_dump of NixOS' services.postgresqlBackup
      and turns the plaintext dump into an age-encrypted archive on every
      upstream of an rclone union, verifying each copy and logging each
      upstream's result to journald.
    '';
    homepage = "https://github.com/pgarchive/pgarchive";
    mainProgram = "pgarchive";
    platforms = lib.platforms.linux;
  };
}
