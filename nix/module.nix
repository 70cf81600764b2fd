# The NixOS module: the Clauderon appliance (API and web UI, credential proxy, reconciler,
# audit shipper, all under supervisord) as one systemd service.
#
# Credentials come from `environmentFile`, which systemd reads when the service starts: they
# never enter the Nix store, which every local user can read. The service reaches the Docker
# engine through its socket, so it runs with the `docker` group; that group is as good as
# root on this machine, which is why the appliance gets its own user by default.
#
# No private mount namespace (PrivateTmp, ProtectSystem, ProtectHome): every path the
# appliance hands the engine to mount into a session (worktrees, the repository's git
# directory) must mean the same thing to dockerd as to the appliance.
{ self }:
{ config, lib, pkgs, ... }:
let
  cfg = config.services.clauderon;
  inherit (lib) mkEnableOption mkIf mkOption optional optionalAttrs types;
  dockerEnabled = config.virtualisation.docker.enable;
  secretLooking = builtins.filter
    (name: builtins.match ".*(TOKEN|KEY|SECRET|PASSWORD|CREDENTIAL).*" name != null)
    (builtins.attrNames cfg.environment);
in
{
  options.services.clauderon = {
    enable = mkEnableOption "the Clauderon appliance (API and web UI, credential proxy, reconciler, audit shipper)";

    package = mkOption {
      type = types.package;
      default = self.packages.${pkgs.stdenv.hostPlatform.system}.clauderon;
      defaultText = lib.literalExpression "clauderon.packages.\${pkgs.stdenv.hostPlatform.system}.clauderon";
      description = "The clauderon package; the service runs its `clauderon daemon`.";
    };

    dataDir = mkOption {
      type = types.path;
      default = "/var/lib/clauderon";
      description = ''
        CLAUDERON_HOME: the database, the proxy's CA, `secrets/`, the audit log, worktrees
        and logs. Created owned by the service user, mode 0700.
      '';
    };

    host = mkOption {
      type = types.str;
      default = "127.0.0.1";
      description = ''
        Address of the web UI's HTTP listener (CLAUDERON_BIND_ADDR). Loopback by default:
        from another device, publish it with `tailscale serve 3030`, which authenticates.
      '';
    };

    port = mkOption {
      type = types.port;
      default = 3030;
      description = "Port of the web UI's HTTP listener (CLAUDERON_HTTP_PORT); 0 turns HTTP off.";
    };

    dockerSocket = mkOption {
      type = types.path;
      default = "/run/docker.sock";
      description = ''
        The Docker engine's socket (DOCKER_HOST is `unix://` this path). The service joins
        the `docker` group when `virtualisation.docker.enable` is set, which this module
        sets by default.
      '';
    };

    environmentFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/run/secrets/clauderon.env";
      description = ''
        A file of `NAME=value` lines read by systemd when the service starts: the real
        credentials the proxy injects (ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN,
        OPENAI_API_KEY, GITHUB_TOKEN, ...). An absolute path as a string, outside the
        Nix store (the store is world-readable), e.g. one written by agenix or sops-nix.
      '';
    };

    environment = mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = { CLAUDERON_PROXY_PORT = "3128"; };
      description = ''
        More environment for the service, for settings only: the values are written to
        the world-readable Nix store, so credentials belong in `environmentFile`.
      '';
    };

    user = mkOption {
      type = types.str;
      default = "clauderon";
      description = ''
        The user the appliance runs as. It serves repositories this user owns; as `root`
        it serves every user's, running git as each repository's owner. The default user
        is created by this module.
      '';
    };

    group = mkOption {
      type = types.str;
      default = "clauderon";
      description = "The service's primary group; the default group is created by this module.";
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.environmentFile == null
          || (lib.hasPrefix "/" cfg.environmentFile
            && !lib.hasPrefix "${builtins.storeDir}/" cfg.environmentFile);
        message = "services.clauderon.environmentFile must be an absolute path outside the Nix store (the store is world-readable): keep the credentials in a file such as /run/secrets/clauderon.env";
      }
      {
        assertion = secretLooking == [ ];
        message = "services.clauderon.environment would write ${lib.concatStringsSep ", " secretLooking} into the world-readable Nix store: put credentials in services.clauderon.environmentFile";
      }
    ];

    virtualisation.docker.enable = lib.mkDefault true;

    users.users = optionalAttrs (cfg.user == "clauderon") {
      clauderon = {
        isSystemUser = true;
        group = cfg.group;
        home = cfg.dataDir;
        description = "Clauderon appliance";
      };
    };
    users.groups = optionalAttrs (cfg.group == "clauderon") { clauderon = { }; };

    environment.systemPackages = [ cfg.package ];

    systemd.tmpfiles.rules = [ "d '${cfg.dataDir}' 0700 ${cfg.user} ${cfg.group} - -" ];

    systemd.services.clauderon = {
      description = "Clauderon appliance (API, proxy, reconciler, shipper)";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ] ++ optional dockerEnabled "docker.service";
      requires = optional dockerEnabled "docker.service";
      environment = {
        CLAUDERON_HOME = cfg.dataDir;
        CLAUDERON_BIND_ADDR = cfg.host;
        CLAUDERON_HTTP_PORT = toString cfg.port;
        DOCKER_HOST = "unix://${cfg.dockerSocket}";
      } // cfg.environment;
      serviceConfig = {
        ExecStart = "${cfg.package}/bin/clauderon daemon";
        User = cfg.user;
        Group = cfg.group;
        SupplementaryGroups = optional dockerEnabled "docker";
        EnvironmentFile = optional (cfg.environmentFile != null) cfg.environmentFile;
        WorkingDirectory = cfg.dataDir;
        Restart = "on-failure";
        RestartSec = 5;
        # The sessions' firewall goes into the host's INPUT and FORWARD chains (iptables is
        # on the package's PATH): without these the proxy and the reconciler refuse to start.
        AmbientCapabilities = [ "CAP_NET_ADMIN" "CAP_NET_RAW" ];
        # supervisord gets SIGTERM and stops the four services in turn, each draining within
        # its 15 s; only what is left after that is killed.
        KillMode = "mixed";
        TimeoutStopSec = 75;
      };
    };
  };
}
