{
  description = "Clauderon: run many AI coding agents side by side, each in its own container, holding zero real credentials";

  # A supported NixOS release: Node.js 20 went out of support in April 2026 and nixpkgs marked
  # it insecure, so the web UI builds with Node.js 22 (vite and eslint need >= 20.19).
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs = { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      version = (lib.importTOML ./pyproject.toml).project.version;

      # pyproject.toml's [project] dependencies under their nixpkgs names (a test holds the
      # two lists equal).
      pythonDeps = ps: with ps; [
        trio hypercorn quart-trio docker kubernetes trustme cryptography sh tomli supervisor
        h11 httpx httpcore anyio wsproto textual webauthn prometheus-client
      ];
      # The [dev] extra, less what nixpkgs does not package (types-docker; py-spy is a tool).
      devPythonDeps = ps: with ps; [ pytest pytest-trio pytest-xdist hypothesis mypy ruff trio-websocket playwright jsonschema schemathesis ];
      # What the services run besides Python: supervisord itself, git for worktrees, the
      # Docker CLI (client only) for attach and image builds, tmux and curl, and iptables for
      # the sessions' firewall (the services need CAP_NET_ADMIN too: see nix/module.nix).
      runtimeTools = pkgs: python: [
        python.pkgs.supervisor pkgs.git pkgs.docker-client pkgs.tmux pkgs.curl pkgs.iptables
      ];

      # Only what the wheel is built from: the browser app's sources and a local
      # node_modules/ or api/static/ never reach the Python build.
      pythonSrc = lib.fileset.toSource {
        root = ./.;
        fileset = lib.fileset.unions [
          ./pyproject.toml ./README.md ./supervisord.conf
          ./appliance ./proxy ./cli ./images
          (lib.fileset.difference ./api (lib.fileset.unions [
            ./api/web (lib.fileset.maybeMissing ./api/static)
          ]))
        ];
      };
      # package-lock.json is written without `resolved` URLs (npm's
      # omit-lockfile-registry-resolved), and importNpmLock fetches only what has one. A
      # registry package's tarball URL follows from its name and version; the lock's
      # integrity is still the hash each download is checked against.
      npmLock =
        let
          lock = lib.importJSON ./api/web/package-lock.json;
          tarball = path: module:
            let
              name = module.name or (lib.last (lib.splitString "node_modules/" path));
              base = lib.last (lib.splitString "/" name);
            in
            "https://registry.npmjs.org/${name}/-/${base}-${module.version}.tgz";
          withUrl = path: module:
            if path == "" || module ? resolved || module.link or false || module.inBundle or false
            then module
            else module // { resolved = tarball path module; };
        in
        lock // { packages = lib.mapAttrs withUrl lock.packages; };
      webSrc = lib.fileset.toSource {
        root = ./api/web;
        fileset = lib.fileset.difference ./api/web (lib.fileset.maybeMissing ./api/web/node_modules);
      };

      build = pkgs:
        let
          python = pkgs.python3;
          nodejs = pkgs.nodejs_22;
          seconds = n: n * 1000000000; # Docker's image config counts durations in nanoseconds
        in
        rec {
          inherit python nodejs;

          # The browser app. importNpmLock turns package-lock.json into one fetch per package
          # (each checked against the lock's integrity), so there is no hash to maintain here.
          webui = pkgs.stdenv.mkDerivation {
            pname = "clauderon-webui";
            inherit version;
            src = webSrc;
            npmDeps = pkgs.importNpmLock { npmRoot = ./api/web; packageLock = npmLock; };
            nativeBuildInputs = [ nodejs pkgs.importNpmLock.npmConfigHook ];
            # `npm run build` is strict tsc + eslint, then vite, which writes ../static.
            buildPhase = ''
              runHook preBuild
              npm run build
              runHook postBuild
            '';
            installPhase = ''
              runHook preInstall
              test -f ../static/index.html
              cp -r ../static "$out"
              runHook postInstall
            '';
            meta.description = "Clauderon's web UI, built into the files the API serves";
          };

          clauderon = python.pkgs.buildPythonApplication {
            pname = "clauderon";
            inherit version;
            pyproject = true;
            src = pythonSrc;
            build-system = [ python.pkgs.setuptools ];
            dependencies = pythonDeps python.pkgs;
            # The web UI is package data (api/static/**/*): the built one goes where
            # setuptools takes it from.
            postPatch = ''
              rm -rf api/static
              cp -r --no-preserve=mode ${webui} api/static
            '';
            # Installed as a Nix package, sys.prefix is the interpreter's, not ours: point
            # `clauderon daemon` at our supervisord.conf, and that file at our console scripts.
            makeWrapperArgs = [
              "--prefix" "PATH" ":" (lib.makeBinPath (runtimeTools pkgs python))
              "--set-default" "CLAUDERON_SUPERVISORD_CONF"
              "${placeholder "out"}/share/clauderon/supervisord.conf"
            ];
            postInstall = ''
              substituteInPlace "$out/share/clauderon/supervisord.conf" \
                --replace-fail '%(ENV_CLAUDERON_BIN)s' "$out/bin"
              test -f "$out/${python.sitePackages}/api/static/index.html"
            '';
            pythonImportsCheck = [ "appliance" "api" "proxy" "cli" ];
            doCheck = false; # the suite needs a Docker engine: ./tests/run runs it
            passthru = { inherit webui; };
            meta = {
              description = "Run many AI coding agents side by side, each in its own container, holding zero real credentials";
              license = lib.licenses.mit;
              mainProgram = "clauderon";
            };
          };

          # `nix run`: the whole appliance (API, proxy, reconciler, shipper) under supervisord.
          appliance = pkgs.writeShellScriptBin "clauderon-appliance" ''
            exec ${clauderon}/bin/clauderon daemon "$@"
          '';

          # `nix build .#appliance-image && ./result | docker load`: the same image as
          # images/appliance/Dockerfile, run the same way (images/appliance/compose.yaml:
          # host network, NET_ADMIN and NET_RAW, the socket, the data folder and repositories
          # at their own paths). tini is PID 1: it forwards signals to supervisord and reaps
          # the orphans git and docker leave behind; clauderon-preflight checks the
          # deployment, then becomes `clauderon daemon`. No VOLUME: the data folder must be
          # bind-mounted at the same path as on the host, because the engine resolves the
          # worktree mounts it is handed on the host.
          appliance-image = pkgs.dockerTools.streamLayeredImage {
            name = "clauderon-appliance";
            tag = version;
            contents = [
              clauderon python.pkgs.supervisor pkgs.git pkgs.tmux pkgs.docker-client pkgs.curl
              pkgs.iptables pkgs.tini pkgs.dockerTools.binSh pkgs.dockerTools.fakeNss
              pkgs.dockerTools.caCertificates
            ];
            extraCommands = ''
              mkdir -p tmp
              chmod 1777 tmp
            '';
            config = {
              Entrypoint = [ "${pkgs.tini}/bin/tini" "--" ];
              Cmd = [ "${clauderon}/bin/clauderon-preflight" "${clauderon}/bin/clauderon" "daemon" ];
              Env = [
                "CLAUDERON_HOME=/var/lib/clauderon"
                "DOCKER_HOST=unix:///var/run/docker.sock"
                "CLAUDERON_BIND_ADDR=127.0.0.1"
                "PATH=/bin"
                "SSL_CERT_FILE=/etc/ssl/certs/ca-bundle.crt"
              ];
              ExposedPorts = { "3030/tcp" = { }; };
              StopSignal = "SIGTERM";
              # Docker reads HEALTHCHECK from the image config: `clauderon status` asks the
              # API over its Unix socket and fails when the API or the engine is down.
              Healthcheck = {
                Test = [ "CMD" "${clauderon}/bin/clauderon" "status" ];
                Interval = seconds 30;
                Timeout = seconds 10;
                StartPeriod = seconds 30;
                Retries = 3;
              };
              Labels = {
                "org.opencontainers.image.title" = "clauderon-appliance";
                "org.opencontainers.image.version" = version;
              };
            };
          };
        };
    in
    {
      packages = forAll (pkgs:
        let b = build pkgs; in {
          inherit (b) clauderon webui appliance appliance-image;
          default = b.appliance;
        });

      apps = forAll (pkgs:
        let p = self.packages.${pkgs.stdenv.hostPlatform.system}; in {
          default = {
            type = "app";
            program = "${p.appliance}/bin/clauderon-appliance";
            meta.description = "the appliance (API and web UI, proxy, reconciler, shipper) under supervisord";
          };
          clauderon = {
            type = "app";
            program = "${p.clauderon}/bin/clauderon";
            meta.description = "the clauderon command";
          };
        });

      devShells = forAll (pkgs:
        let b = build pkgs; in {
          default = pkgs.mkShell {
            packages = [
              (b.python.withPackages (ps: pythonDeps ps ++ devPythonDeps ps))
              b.nodejs pkgs.nix pkgs.py-spy
            ] ++ runtimeTools pkgs b.python;
          };
        });

      checks = forAll (pkgs:
        let p = self.packages.${pkgs.stdenv.hostPlatform.system}; in {
          package = p.clauderon;
          webui = p.webui;
        });

      nixosModules.default = import ./nix/module.nix { inherit self; };
    };
}
