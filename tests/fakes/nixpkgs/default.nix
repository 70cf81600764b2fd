# Test double for nixpkgs, the flake's one input: the real one cannot be fetched on a machine
# without the network, so tests/unit/test_flake.py evaluates flake.nix against this stand-in
# (through evaluate.nix beside it).
#
# It provides only what flake.nix and nix/module.nix call, under nixpkgs' own names, and it
# is strict where a mistake would otherwise surface only in a build nobody ran here:
#
# - every builder checks its arguments: the required ones are there, and no unknown name
#   (stricter than nixpkgs on purpose: nixpkgs turns an unknown argument into an environment
#   variable, so a typo like `dependancies` would build a package with no dependencies);
# - a missing package or function is a missing attribute, as in nixpkgs;
# - what nixpkgs checks at evaluation or build time is checked here: Python dependencies of
#   the builder's own interpreter, importNpmLock's hook together with its npmDeps and a
#   Node.js, a lock file importNpmLock reads without a hash (lockfileVersion >= 2, an
#   integrity for every download, every declared dependency locked), lib.fileset paths that
#   exist and lie under the source root, Docker image config keys from the image spec,
#   option types.
#
# A "derivation" here is an attribute set recording what it was built from (`kind`, `args`,
# `system`) with a store-path-shaped `outPath`; nothing is built or copied to the store.
let
  b = builtins;
  fail = msg: throw "nixpkgs test double: ${msg}";
  names = xs: b.concatStringsSep ", " xs;
  hasPrefix = pre: s: b.substring 0 (b.stringLength pre) s == pre;

  # `args` unchanged when it has every required name and only allowed ones.
  checkArgs = fn: allowed: required: args:
    let
      unknown = b.filter (n: !(b.elem n allowed)) (b.attrNames args);
      missing = b.filter (n: !(args ? ${n})) required;
    in
    if !(b.isAttrs args) then fail "${fn}: expected an attribute set of arguments"
    else if unknown != [ ] then
      fail "${fn}: unknown argument(s) ${names unknown} (accepted: ${names allowed})"
    else if missing != [ ] then fail "${fn}: missing argument(s) ${names missing}"
    else args;

  isDerivation = x: b.isAttrs x && (x.type or null) == "derivation";
  mkDrv = system: { kind, name, args ? { }, extra ? { } }:
    let hash = b.substring 0 32 (b.hashString "sha256" "${system}:${kind}:${name}"); in
    {
      type = "derivation";
      inherit kind name args system;
      outPath = "${b.storeDir}/${hash}-${name}";
      meta = args.meta or { };
    } // extra;
  pkg = system: name: mkDrv system { kind = "package"; inherit name; };

  # --- lib.fileset: a file set is a list of terms, each a path less some paths below it ---
  fileset = rec {
    coerce = fn: x:
      if b.isAttrs x && (x._type or null) == "fileset" then x
      else if !(b.isPath x) then
        fail "lib.fileset.${fn}: expected a path or a file set, got a ${b.typeOf x}"
      else if b.pathExists x then
        { _type = "fileset"; terms = [{ path = toString x; except = [ ]; }]; }
      else fail "lib.fileset.${fn}: ${toString x} does not exist (lib.fileset.maybeMissing allows that)";
    maybeMissing = p:
      if !(b.isPath p) then fail "lib.fileset.maybeMissing: expected a path, got a ${b.typeOf p}"
      else if b.pathExists p then coerce "maybeMissing" p
      else { _type = "fileset"; terms = [ ]; };
    unions = list:
      if !(b.isList list) then fail "lib.fileset.unions: expected a list"
      else { _type = "fileset"; terms = b.concatMap (x: (coerce "unions" x).terms) list; };
    difference = positive: negative:
      let cut = map (t: t.path) (coerce "difference" negative).terms; in
      {
        _type = "fileset";
        terms = map (t: t // { except = t.except ++ cut; }) (coerce "difference" positive).terms;
      };
    toSource = args:
      let
        a = checkArgs "lib.fileset.toSource" [ "root" "fileset" ] [ "root" "fileset" ] args;
        root =
          if b.isPath a.root && b.pathExists a.root then toString a.root
          else fail "lib.fileset.toSource: root must be an existing path";
        rel = p:
          if p == root then "."
          else if hasPrefix "${root}/" p then b.substring (b.stringLength root + 1) (b.stringLength p) p
          else fail "lib.fileset.toSource: ${p} is not under the root ${root}";
        hash = b.substring 0 32 (b.hashString "sha256" "source:${root}");
      in
      {
        kind = "source";
        inherit root;
        files = map (t: { path = rel t.path; except = map rel t.except; })
          (coerce "toSource" a.fileset).terms;
        outPath = "${b.storeDir}/${hash}-source";
      };
  };

  # --- option types and the module functions ---
  mkOptionType = name: description: check:
    { _type = "option-type"; inherit name description check; };
  types = {
    bool = mkOptionType "bool" "boolean" b.isBool;
    str = mkOptionType "str" "string" b.isString;
    port = mkOptionType "port" "16 bit unsigned integer; between 0 and 65535 (both inclusive)"
      (x: b.isInt x && x >= 0 && x <= 65535);
    path = mkOptionType "path" "absolute path"
      (x: (b.isString x || b.isPath x || isDerivation x) && b.substring 0 1 (toString x) == "/");
    package = mkOptionType "package" "package" isDerivation;
    nullOr = t: mkOptionType "nullOr" "null or ${t.description}" (x: x == null || t.check x);
    attrsOf = t: mkOptionType "attrsOf" "attribute set of ${t.description}"
      (x: b.isAttrs x && b.all t.check (b.attrValues x));
  };
  # The real mkOption takes exactly these arguments.
  mkOption =
    { default ? null, defaultText ? null, example ? null, description ? null
    , relatedPackages ? null, type ? null, apply ? null, internal ? null, visible ? null
    , readOnly ? null }@attrs:
    attrs // { _type = "option"; };

  lib = rec {
    inherit (b) mapAttrs;
    last = list: if list == [ ] then fail "lib.last: empty list" else b.elemAt list (b.length list - 1);
    splitString = sep: s:
      let
        meta = [ "\\" "[" "]" "(" ")" "{" "}" "." "*" "+" "?" "^" "$" "|" ];
        escaped = b.replaceStrings meta (map (c: "\\" + c) meta) sep;
      in
      b.filter b.isString (b.split escaped s);
    genAttrs = ns: f: b.listToAttrs (map (n: { name = n; value = f n; }) ns);
    makeBinPath = ps: b.concatStringsSep ":" (map (p: "${p}/bin") (b.filter (p: p != null) ps));
    importTOML = path: b.fromTOML (b.readFile path);
    importJSON = path: b.fromJSON (b.readFile path);
    inherit hasPrefix fileset types mkOption;
    inherit (b) concatStringsSep;
    optional = cond: x: if cond then [ x ] else [ ];
    optionals = cond: xs: if cond then xs else [ ];
    optionalAttrs = cond: set: if cond then set else { };
    literalExpression = text: { _type = "literalExpression"; inherit text; };
    licenses.mit = { spdxId = "MIT"; shortName = "mit"; };
    mkEnableOption = name: mkOption {
      default = false;
      example = true;
      description = "Whether to enable ${name}.";
      type = types.bool;
    };
    mkIf = condition: content:
      if !(b.isBool condition) then fail "mkIf: the condition is a ${b.typeOf condition}, not a bool"
      else { _type = "if"; inherit condition content; };
    mkMerge = contents: { _type = "merge"; inherit contents; };
    mkOverride = priority: content: { _type = "override"; inherit priority content; };
    mkDefault = mkOverride 1000;
    mkForce = mkOverride 50;
  };

  # --- Python: one interpreter, its package set and buildPythonApplication ---
  pythonPackageNames = [
    "trio" "hypercorn" "quart-trio" "docker" "kubernetes" "trustme" "cryptography" "sh" "tomli"
    "supervisor" "h11" "httpx" "httpcore" "anyio" "wsproto" "textual" "webauthn" "prometheus-client"
    "setuptools"
    "pytest" "pytest-trio" "pytest-xdist" "hypothesis" "mypy" "ruff" "trio-websocket" "playwright" "jsonschema"
    "schemathesis"
  ];
  # nixpkgs refuses a dependency built for another interpreter.
  checkPythonDeps = version: fn: what: deps:
    let bad = b.filter (d: !(isDerivation d) || (d.pythonVersion or null) != version) deps; in
    if !(b.isList deps) then fail "${fn}: ${what} must be a list"
    else if bad != [ ] then
      fail "${fn}: ${what} holds ${names (map (d: d.name or (b.typeOf d)) bad)}, not a Python ${version} package"
    else deps;
  buildPythonApplication = system: version: args:
    let
      a = checkArgs "buildPythonApplication" [
        "pname" "version" "src" "pyproject" "format" "build-system" "dependencies"
        "optional-dependencies" "nativeBuildInputs" "buildInputs" "nativeCheckInputs"
        "makeWrapperArgs" "postPatch" "preBuild" "postInstall" "postFixup"
        "pythonImportsCheck" "pythonRelaxDeps" "doCheck" "passthru" "meta"
      ] [ "pname" "version" "src" ] args;
      check = checkPythonDeps version "buildPythonApplication";
    in
    if !(a ? pyproject || a ? format) then
      fail "buildPythonApplication: ${a.pname} sets neither pyproject nor format"
    else
      b.seq (check "dependencies" (a.dependencies or [ ]))
        (b.seq (check "build-system" (a.build-system or [ ]))
          (mkDrv system {
            kind = "python-application";
            name = "${a.pname}-${a.version}";
            args = a;
            extra = (a.passthru or { }) // { inherit (a) pname version; pythonVersion = version; };
          }));
  mkPython = system: version:
    let
      ps = lib.genAttrs pythonPackageNames
        (n: mkDrv system {
          kind = "python-package";
          name = "python${version}-${n}";
          extra = { pname = n; pythonVersion = version; };
        }) // { buildPythonApplication = buildPythonApplication system version; };
    in
    pkg system "python3-${version}" // {
      inherit version;
      pkgs = ps;
      sitePackages = "lib/python${version}/site-packages";
      withPackages = f:
        mkDrv system {
          kind = "python-env";
          name = "python3-${version}-env";
          args.packages = checkPythonDeps version "python3.withPackages" "the chosen packages" (f ps);
        };
    };

  # --- importNpmLock (pkgs/build-support/node/import-npm-lock) ---
  npmConfigHook = system: mkDrv system {
    kind = "setup-hook";
    name = "npm-config-hook";
    extra.hookName = "importNpmLock.npmConfigHook";
  };
  importNpmLock = system: args:
    let
      a = checkArgs "importNpmLock"
        [ "npmRoot" "package" "packageLock" "pname" "version" "fetcherOpts" ] [ ] args;
      root = a.npmRoot or null;
      rootOk =
        if root == null && !(a ? package && a ? packageLock) then
          fail "importNpmLock: give npmRoot, or both package and packageLock"
        else if root != null && !(b.isPath root && b.pathExists (root + "/package.json")) then
          fail "importNpmLock: npmRoot must be a path holding package.json and package-lock.json"
        else true;
      package = a.package or (lib.importJSON (root + "/package.json"));
      lock = a.packageLock or (lib.importJSON (root + "/package-lock.json"));
      modules = lock.packages
        or (fail "importNpmLock: package-lock.json has no `packages` (lockfileVersion 2 or 3 needed)");
      scheme = url: let m = b.match "([a-z+]+)://.*" url; in if m == null then null else b.head m;
      # What fetchModule does with each entry: fetchurl with the lock's integrity as the hash.
      # An entry it cannot fetch is one npm would have to download in the build sandbox.
      moduleOk = name: m:
        let s = if m ? resolved && m.resolved != null then scheme m.resolved else null; in
        if name == "" || m.link or false || m.inBundle or false then true
        else if !(m ? resolved) || m.resolved == null then
          fail "importNpmLock: ${name} has no resolved URL, so nothing is fetched for it and npm cannot download it in the build sandbox"
        else if s == null || hasPrefix "git" s then true
        else if s != "http" && s != "https" then fail "importNpmLock: ${name}: unsupported URL scheme ${s}"
        else if m ? integrity then true
        else fail "importNpmLock: ${name} has no integrity in package-lock.json; fetchurl needs it as the hash";
      # package.json's dependencies are looked up in the lock by name.
      declared = b.attrNames ((package.dependencies or { }) // (package.devDependencies or { }));
      unlocked = b.filter (n: !(modules ? "node_modules/${n}")) declared;
      pname = a.pname or (package.name or "unknown");
      version = a.version or (package.version or "0.0.0");
    in
    if unlocked != [ ] then
      fail "importNpmLock: package.json declares ${names unlocked}, which package-lock.json does not lock (run npm install)"
    else
      b.seq rootOk (b.seq (b.all (x: x) (b.attrValues (b.mapAttrs moduleOk modules)))
        (mkDrv system {
          kind = "npm-deps";
          name = "${pname}-${version}-sources";
          args = {
            npmRoot = if root == null then null else toString root;
            resolved = b.mapAttrs (_: m: m.resolved or null) modules;
          };
        }));

  # --- stdenv.mkDerivation, with importNpmLock's hook preconditions ---
  mkDerivation = system: args:
    let
      a = checkArgs "stdenv.mkDerivation" [
        "pname" "version" "name" "src" "sourceRoot" "nativeBuildInputs" "buildInputs" "npmDeps"
        "npmFlags" "makeCacheWritable" "configurePhase" "buildPhase" "installPhase" "checkPhase"
        "postPatch" "preBuild" "postBuild" "preInstall" "postInstall" "doCheck" "strictDeps"
        "env" "passthru" "meta"
      ] [ "src" ] args;
      name = a.name or (if a ? pname && a ? version then "${a.pname}-${a.version}"
        else fail "stdenv.mkDerivation: give name, or pname and version");
      inputs = a.nativeBuildInputs or [ ];
      hasHook = b.any (x: (x.hookName or null) == "importNpmLock.npmConfigHook") inputs;
      hasNode = b.any (x: x.isNodejs or false) inputs;
      where = "stdenv.mkDerivation ${name}";
    in
    if !(b.all isDerivation inputs) then fail "${where}: nativeBuildInputs must be packages"
    else if hasHook && !(a ? npmDeps) then
      fail "${where}: importNpmLock.npmConfigHook needs npmDeps ('npmDeps' should be set when using npmConfigHook)"
    else if a ? npmDeps && (a.npmDeps.kind or null) != "npm-deps" then
      fail "${where}: npmDeps must come from importNpmLock"
    else if a ? npmDeps && !hasHook then
      fail "${where}: npmDeps from importNpmLock needs importNpmLock.npmConfigHook in nativeBuildInputs"
    else if hasHook && !hasNode then
      fail "${where}: importNpmLock.npmConfigHook runs npm: put a nodejs in nativeBuildInputs"
    else mkDrv system { kind = "derivation"; inherit name; args = a; extra = a.passthru or { }; };

  # --- dockerTools.streamLayeredImage and the Docker image config it writes verbatim ---
  imageConfigKeys = [
    "User" "ExposedPorts" "Env" "Entrypoint" "Cmd" "Healthcheck" "Volumes" "WorkingDir"
    "Labels" "StopSignal" "ArgsEscaped" "Memory" "MemorySwap" "CpuShares" "OnBuild" "Shell"
  ];
  isStringList = x: b.isList x && b.all b.isString x;
  checkImageConfig = config:
    let
      c = checkArgs "streamLayeredImage config" imageConfigKeys [ ] config;
      hc = checkArgs "streamLayeredImage config.Healthcheck"
        [ "Test" "Interval" "Timeout" "StartPeriod" "StartInterval" "Retries" ] [ "Test" ]
        (c.Healthcheck or { Test = [ "NONE" ]; });
      # Docker counts health check durations in nanoseconds and refuses less than 1 ms.
      duration = k: !(hc ? ${k}) || (b.isInt hc.${k} && hc.${k} >= 1000000);
      envOk = e: b.match "[A-Za-z_][A-Za-z0-9_]*=.*" e != null;
      portsOk = ports: b.all (p: b.match "[0-9]+/(tcp|udp|sctp)" p != null) (b.attrNames ports)
        && b.all (v: v == { }) (b.attrValues ports);
      problems = b.filter (p: p != null) [
        (if c ? Env && !(isStringList c.Env && b.all envOk c.Env)
          then "Env must be a list of NAME=value strings" else null)
        (if c ? Entrypoint && !(isStringList c.Entrypoint) then "Entrypoint must be a list of strings" else null)
        (if c ? Cmd && !(isStringList c.Cmd) then "Cmd must be a list of strings" else null)
        (if c ? ExposedPorts && !(portsOk c.ExposedPorts)
          then "ExposedPorts must map \"PORT/tcp\" to {}" else null)
        (if !(isStringList hc.Test && hc.Test != [ ] && b.elem (b.head hc.Test) [ "NONE" "CMD" "CMD-SHELL" ])
          then "Healthcheck.Test must be a list starting with CMD, CMD-SHELL or NONE" else null)
        (if !(b.all duration [ "Interval" "Timeout" "StartPeriod" "StartInterval" ])
          then "Healthcheck durations are integers in nanoseconds, at least 1 ms" else null)
        (if hc ? Retries && !(b.isInt hc.Retries && hc.Retries >= 0)
          then "Healthcheck.Retries must be a natural number" else null)
        (if c ? Labels && !(b.all b.isString (b.attrValues c.Labels)) then "Labels must be strings" else null)
      ];
    in
    if problems != [ ] then fail "streamLayeredImage: ${names problems}" else c;
  upper = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];
  lower = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  streamLayeredImage = system: args:
    let
      a = checkArgs "dockerTools.streamLayeredImage" [
        "name" "tag" "fromImage" "contents" "config" "architecture" "created" "mtime" "uid"
        "gid" "uname" "gname" "maxLayers" "extraCommands" "fakeRootCommands" "enableFakechroot"
        "includeStorePaths" "includeNixDB" "passthru" "meta"
      ] [ "name" ] args;
      contents = a.contents or [ ];
    in
    if a.name != b.replaceStrings upper lower a.name then
      fail "dockerTools.streamLayeredImage: image names are lower case (${a.name})"
    else if !(b.isList contents && b.all isDerivation contents) then
      fail "dockerTools.streamLayeredImage: contents must be a list of packages"
    else
      b.seq (checkImageConfig (a.config or { })) (mkDrv system {
        kind = "docker-image-stream";
        name = "stream-${a.name}";
        args = a;
        extra = { imageName = a.name; imageTag = a.tag or null; };
      });

  mkShell = system: args:
    let
      a = checkArgs "mkShell"
        [ "name" "packages" "inputsFrom" "buildInputs" "nativeBuildInputs" "shellHook" "env" ] [ ] args;
      all = (a.packages or [ ]) ++ (a.buildInputs or [ ]) ++ (a.nativeBuildInputs or [ ]);
    in
    if !(b.all isDerivation all) then fail "mkShell: packages must be packages"
    else mkDrv system { kind = "shell"; name = a.name or "nix-shell"; args = a; };

  mkPkgs = system:
    let python3 = mkPython system "3.13"; in
    {
      inherit system lib python3;
      stdenv = { hostPlatform = { inherit system; }; mkDerivation = mkDerivation system; };
      python3Packages = python3.pkgs;
      nodejs_22 = mkDrv system { kind = "package"; name = "nodejs-22.22.0"; extra.isNodejs = true; };
      nodejs_20 = fail "nodejs_20 reached end of life on 2026-04-30 and nixpkgs marks it insecure";
      git = pkg system "git";
      tmux = pkg system "tmux";
      curl = pkg system "curl";
      docker-client = pkg system "docker-client";
      tini = pkg system "tini";
      iptables = pkg system "iptables";
      nix = pkg system "nix";
      py-spy = pkg system "py-spy";
      importNpmLock = {
        __functor = _: importNpmLock system;
        npmConfigHook = npmConfigHook system;
        hooks = {
          npmConfigHook = npmConfigHook system;
          linkNodeModulesHook = pkg system "node-modules-hook";
        };
      };
      dockerTools = {
        streamLayeredImage = streamLayeredImage system;
        binSh = pkg system "bin-sh";
        fakeNss = pkg system "fake-nss";
        caCertificates = pkg system "ca-certificates";
      };
      writeShellScriptBin = name: text:
        if !(b.isString name && b.isString text) then fail "writeShellScriptBin: name and text are strings"
        else mkDrv system { kind = "shell-script-bin"; inherit name; args = { inherit name text; }; };
      mkShell = mkShell system;
    };
in
{
  inherit lib;
  legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] mkPkgs;
  testDouble = { inherit isDerivation; };
}
