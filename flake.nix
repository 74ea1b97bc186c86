{
  description = "pgarchive: age-encrypted PostgreSQL dumps on every upstream of an rclone remote, wired into NixOS' postgresqlBackup";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});

      # nixpkgs' convention for untagged code: 0-unstable-YYYY-MM-DD.
      date = self.lastModifiedDate or "19700101000000";
      version = "0-unstable-${builtins.substring 0 4 date}-${builtins.substring 4 2 date}-${builtins.substring 6 2 date}";
      rev = self.shortRev or self.dirtyShortRev or null;

      packageFor = pkgs: pkgs.callPackage ./nix/package.nix { inherit version rev; };
    in
    {
      packages = forAllSystems (
        system: pkgs: {
          pgarchive = packageFor pkgs;
          default = self.packages.${system}.pgarchive;
        }
      );

      overlays.default = final: prev: { pgarchive = packageFor final; };

      nixosModules = {
        pgarchive = import ./nix/module.nix { flakePackages = self.packages; };
        default = self.nixosModules.pgarchive;
      };

      checks = forAllSystems (
        system: pkgs: {
          package = self.packages.${system}.default;
          module-eval = import ./nix/module-eval-check.nix {
            inherit nixpkgs pkgs system;
            module = self.nixosModules.default;
          };
          vm = import ./nix/vm-test.nix {
            inherit pkgs;
            module = self.nixosModules.default;
          };
        }
      );

      devShells = forAllSystems (
        system: pkgs: {
          default = pkgs.mkShell {
            packages = with pkgs; [
              go_1_25
              gopls
              age
              rclone
              postgresql
            ];
          };
        }
      );
    };
}
