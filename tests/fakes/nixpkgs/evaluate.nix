# Evaluates flake.nix's outputs against the nixpkgs test double (default.nix beside this
# file) and returns, as JSON-ready data, what each output was built from.
#
#   nix-instantiate --eval --strict --json --readonly-mode tests/fakes/nixpkgs/evaluate.nix \
#     --arg flakeDir "$PWD" --arg moduleSettings '{ enable = true; }'
#
# Besides the double's own checks it checks the flake output schema `nix flake check` knows
# (packages, checks and dev shells are derivations, apps are { type = "app"; program }), and
# stands in for the NixOS module system on nix/module.nix: `moduleSettings` are the user's
# `services.clauderon` definitions, checked against the option types; option defaults fill
# the rest; mkIf / mkMerge / mkDefault are resolved (a user definition beats the module's
# mkDefault, nothing finer); every path the module defines must be a NixOS option it is
# allowed to set (the schema below); failed assertions throw as NixOS does. One definition
# per option: the harness merges nothing.
{ flakeDir, moduleSettings ? { enable = true; }, dockerEnable ? null, system ? "x86_64-linux" }:
let
  b = builtins;
  nixpkgs = import ./default.nix;
  inherit (nixpkgs) lib;
  fail = msg: throw "flake evaluation: ${msg}";
  isDerivation = nixpkgs.testDouble.isDerivation;

  flake = import (flakeDir + "/flake.nix");
  outputs = flake.outputs { self = outputs // { outPath = toString flakeDir; }; inherit nixpkgs; };

  # Data for JSON: a derivation becomes its store path, a source its file list.
  show = v:
    if b.isAttrs v then
      (if (v.kind or null) == "source" then { source = { inherit (v) root files; }; }
      else if isDerivation v then v.outPath
      else if (v._type or null) == "literalExpression" then { literalExpression = v.text; }
      else b.mapAttrs (_: show) v)
    else if b.isList v then map show v
    else if b.isFunction v then "<function>"
    else v;
  showDrv = where: d:
    if !(isDerivation d) then fail "${where} is not a derivation"
    else {
      inherit (d) kind name system;
      storePath = d.outPath; # not `outPath`: toJSON would print that alone
      args = show d.args;
    } // lib.optionalAttrs (d ? imageName) { inherit (d) imageName imageTag; };

  # Every derivation the outputs were built from, by store path.
  reachable = v:
    if isDerivation v then [ v ] ++ reachable v.args
    else if b.isAttrs v && (v.kind or null) != "source" then b.concatMap reachable (b.attrValues v)
    else if b.isList v then b.concatMap reachable v
    else [ ];
  derivations = b.listToAttrs (map (d: { name = d.outPath; value = showDrv d.outPath d; })
    (b.concatMap (o: reachable (outputs.${o} or { })) [ "packages" "devShells" "checks" ]));

  # --- the flake output schema ---
  knownOutputs = [ "packages" "apps" "devShells" "checks" "nixosModules" "overlays" "formatter" "lib" ];
  unknownOutputs = b.filter (n: !(b.elem n knownOutputs)) (b.attrNames outputs);
  perSystem = name: f:
    b.mapAttrs (sys: set: b.mapAttrs (n: v: f "${name}.${sys}.${n}" v) set) (outputs.${name} or { });
  checkApp = where: app:
    let extra = b.filter (k: !(b.elem k [ "type" "program" "meta" ])) (b.attrNames app); in
    if extra != [ ] then fail "${where} has unknown attribute(s) ${b.concatStringsSep ", " extra}"
    else if (app.type or null) != "app" then fail "${where}.type must be \"app\""
    else if !(b.isString (app.program or null) && lib.hasPrefix "/" app.program) then
      fail "${where}.program must be an absolute path in the store"
    else app;

  # --- the module system stand-in ---
  module = outputs.nixosModules.default or (fail "nixosModules.default is missing");
  pkgs = nixpkgs.legacyPackages.${system};
  evaluated = module { inherit lib pkgs config; modulesPath = "/modules"; options = { }; };
  opts = evaluated.options.services.clauderon;
  optionNames = b.attrNames opts;
  unknownSettings = b.filter (n: !(opts ? ${n})) (b.attrNames moduleSettings);
  checkValue = name: value:
    let opt = opts.${name}; in
    if (opt._type or null) != "option" then fail "services.clauderon.${name} is not declared with mkOption"
    else if !(opt ? type) || opt.type == null then fail "services.clauderon.${name} has no type"
    else if opt.type.check value then value
    else fail "A definition for option `services.clauderon.${name}' is not of type `${opt.type.description}'.";
  cfg = b.mapAttrs
    (name: opt: checkValue name (if moduleSettings ? ${name} then moduleSettings.${name} else opt.default or null))
    opts;
  config = {
    services.clauderon = cfg;
    virtualisation.docker.enable =
      if dockerEnable != null then dockerEnable else resolved.virtualisation.docker.enable or false;
  };

  resolve = v:
    if b.isAttrs v then
      (if (v._type or null) == "if" then (if v.condition then resolve v.content else { })
      else if (v._type or null) == "override" then resolve v.content
      else if (v._type or null) == "merge" then b.foldl' (a: c: a // resolve c) { } v.contents
      else if isDerivation v || (v._type or null) != null then v
      else b.mapAttrs (_: resolve) v)
    else v;
  resolved = resolve (evaluated.config or { });

  # The NixOS options the module may define. "*" stands for any name; null for any value.
  # systemd directives are free-form in NixOS; listing them catches a misspelt one, which
  # systemd would only log and ignore.
  serviceDirectives = lib.genAttrs [
    "Type" "ExecStart" "ExecStartPre" "ExecReload" "User" "Group" "SupplementaryGroups"
    "EnvironmentFile" "WorkingDirectory" "StateDirectory" "RuntimeDirectory" "Restart"
    "RestartSec" "KillMode" "KillSignal" "TimeoutStartSec" "TimeoutStopSec" "UMask"
    "NoNewPrivileges" "LimitNOFILE" "AmbientCapabilities"
  ] (_: null);
  schema = {
    assertions = null;
    virtualisation.docker.enable = null;
    users.users."*" = lib.genAttrs [ "isSystemUser" "group" "home" "description" "extraGroups" ] (_: null);
    users.groups."*" = { gid = null; };
    environment.systemPackages = null;
    systemd.tmpfiles.rules = null;
    systemd.services."*" = {
      description = null; wantedBy = null; wants = null; after = null; requires = null;
      environment = null; path = null; serviceConfig = serviceDirectives;
    };
  };
  checkSchema = loc: s: v:
    if s == null then v
    else if !(b.isAttrs v) then fail "The option `${loc}' is an attribute set, not a ${b.typeOf v}."
    else b.mapAttrs
      (k: sub:
        let s' = s.${k} or s."*" or (fail "The option `${lib.concatStringsSep "." [ loc k ]}' does not exist."); in
        checkSchema (if loc == "" then k else "${loc}.${k}") s' sub)
      v;
  checkedConfig = checkSchema "" schema resolved;
  failedAssertions = map (a: a.message) (b.filter (a: !a.assertion) (resolved.assertions or [ ]));

  moduleReport =
    if unknownSettings != [ ] then
      fail "The option `services.clauderon.${b.head unknownSettings}' does not exist."
    else if failedAssertions != [ ] then
      throw "\nFailed assertions:\n- ${lib.concatStringsSep "\n- " failedAssertions}"
    else {
      options = b.mapAttrs (name: opt: {
        type = opt.type.description;
        default = show (opt.default or null);
        description = opt.description or null;
      }) opts;
      cfg = show cfg;
      config = show checkedConfig;
    };
in
if unknownOutputs != [ ] then fail "unknown flake output(s) ${b.concatStringsSep ", " unknownOutputs}"
else {
  outputs = b.attrNames outputs;
  packages = perSystem "packages" showDrv;
  apps = perSystem "apps" checkApp;
  devShells = perSystem "devShells" showDrv;
  checks = perSystem "checks" showDrv;
  inherit derivations;
  nixosModules = b.mapAttrs (_: m: b.typeOf m) (outputs.nixosModules or { });
  module = moduleReport;
}
