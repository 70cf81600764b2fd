{
  description = "Clauderon: run many AI coding agents side by side, each in its own container, holding zero real credentials";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      pythonDeps = ps: with ps; [
        trio hypercorn quart-trio docker kubernetes trustme cryptography sh tomli supervisor
        h11 httpx wsproto textual webauthn
      ];
      runtimeTools = pkgs: [ pkgs.git pkgs.docker-client pkgs.tmux pkgs.curl ];
    in
    {
      packages = forAll (pkgs: rec {
        clauderon = pkgs.python311Packages.buildPythonApplication {
          pname = "clauderon";
          version = "0.1.0";
          pyproject = true;
          src = ./.;
          build-system = [ pkgs.python311Packages.setuptools ];
          dependencies = pythonDeps pkgs.python311Packages;
          # supervisord.conf is installed under share/clauderon by pyproject's data-files.
          makeWrapperArgs = [ "--prefix" "PATH" ":" (pkgs.lib.makeBinPath (runtimeTools pkgs)) ];
          doCheck = false; # the suite needs a Docker engine: ./tests/run runs it
        };
        # `nix run`: the whole appliance (API, proxy, reconciler, shipper) under supervisord.
        appliance = pkgs.writeShellScriptBin "clauderon-appliance" ''
          exec ${clauderon}/bin/clauderon daemon "$@"
        '';
        default = appliance;
      });

      apps = forAll (pkgs: {
        default = {
          type = "app";
          program = "${self.packages.${pkgs.system}.appliance}/bin/clauderon-appliance";
        };
        clauderon = {
          type = "app";
          program = "${self.packages.${pkgs.system}.clauderon}/bin/clauderon";
        };
      });

      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          packages = [ (pkgs.python311.withPackages (ps: pythonDeps ps ++ (with ps; [
            pytest pytest-trio hypothesis mypy trio-websocket
          ]))) pkgs.ruff pkgs.nodejs_20 ] ++ runtimeTools pkgs;
        };
      });

      checks = forAll (pkgs: {
        package = self.packages.${pkgs.system}.clauderon;
      });
    };
}
