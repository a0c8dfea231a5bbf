#!/usr/bin/env bash
# Installs the ORIGINAL Node.js zmq-raft (npm `zmq-raft`, newest published 0.5.0) into a folder of its
# own, outside any git repo, so ../shared/bench/compare.py can run it beside this project:
#
#     bash bench/install_original.sh /work/nzr          # default folder: ./.nzr
#     export NZR=/work/nzr/node_modules/zmq-raft         # printed at the end
#     PERF_ROUNDS=5 PERF_SECS=6 python ../shared/bench/compare.py
#
# Idempotent: every step is skipped when its result is already there (re-running on a good install
# only re-checks it). Needs: Debian/Ubuntu (apt), node + npm on PATH (tested with node v20.20.2,
# npm 11.19.1), root or sudo for the one apt step. No downloads from nodejs.org or github are needed.
#
# Overridable through the environment: ZMQ_RAFT_VERSION (0.5.0), NAN_VERSION (2.22.2),
# DEBUG_VERSION (4.4.1), NODEDIR (Node headers prefix; default: the prefix of the running node).
set -euo pipefail

DEST=${1:-./.nzr}
ZMQ_RAFT_VERSION=${ZMQ_RAFT_VERSION:-0.5.0}
# zeromq@5.2.8 (what zmq-raft@0.5.0 depends on) pins nan 2.14.2, which does not compile against
# Node 20's V8 headers; nan 2.22.x is the line that supports Node 18-23 and is API compatible.
NAN_VERSION=${NAN_VERSION:-2.22.2}
# zmq-raft requires('debug') all over lib/ and bin/ but does not declare it as a dependency
# (it came in through its dev tooling), so it must be installed beside it.
DEBUG_VERSION=${DEBUG_VERSION:-4.4.1}

start=$(date +%s)
log() { printf '[install_original] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v node >/dev/null || die "node is not on PATH"
command -v npm >/dev/null || die "npm is not on PATH"

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; fi
fi

# --- 1. System packages ---------------------------------------------------------------------------
# zeromq@5 normally downloads and compiles its own libzmq 4.2.2 from github; we build the addon against
# the distribution's libzmq instead (npm_config_zmq_external=true below), which needs its headers
# (zmq.h) and the libzmq.so link: libzmq3-dev. node-gyp needs a C++ toolchain, make and python3.
need_pkgs=()
dpkg -s libzmq3-dev >/dev/null 2>&1 || need_pkgs+=(libzmq3-dev)
command -v make >/dev/null || need_pkgs+=(make)
command -v g++ >/dev/null || need_pkgs+=(g++)
command -v python3 >/dev/null || need_pkgs+=(python3)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "apt-get install ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get install -y --no-install-recommends "${need_pkgs[@]}" >&2; then
    # Package lists may be missing or stale on a fresh machine/container.
    $SUDO apt-get update >&2
    $SUDO apt-get install -y --no-install-recommends "${need_pkgs[@]}" >&2
  fi
else
  log "system packages present (libzmq3-dev $(dpkg-query -W -f='${Version}' libzmq3-dev))"
fi

# --- 2. Node headers for node-gyp -----------------------------------------------------------------
# There is no zeromq@5 prebuilt binary for Node 20 (its prebuilds stop at ABI 88 = Node 15), so the
# addon is always compiled. node-gyp would otherwise download the headers tarball from nodejs.org,
# which may be unreachable; the Debian/NodeSource node package ships them under <prefix>/include/node,
# so point node-gyp at the prefix of the node that will run the addon (--nodedir).
if [ -z "${NODEDIR:-}" ]; then
  node_bin=$(node -p 'require("fs").realpathSync(process.execPath)')
  NODEDIR=$(dirname "$(dirname "$node_bin")")
fi
if [ -f "$NODEDIR/include/node/common.gypi" ] && [ -f "$NODEDIR/include/node/node.h" ]; then
  export npm_config_nodedir="$NODEDIR"
  log "node $(node -v), headers from $NODEDIR/include/node"
else
  log "WARNING: no Node headers under $NODEDIR/include/node; node-gyp will try to download them"
fi

# --- 3. The install folder --------------------------------------------------------------------------
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
if git -C "$DEST" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  log "WARNING: $DEST is inside a git work tree; an install folder outside any repo is recommended"
fi
# A package.json of its own so that `overrides` applies (npm honours overrides only in the root
# project) and so that npm does not walk up and install into some parent project.
pkg_json=$(cat <<EOF
{
  "name": "nzr-original",
  "private": true,
  "description": "The original Node zmq-raft, installed for side-by-side benchmarks (see install_original.sh)",
  "dependencies": {
    "zmq-raft": "$ZMQ_RAFT_VERSION",
    "debug": "$DEBUG_VERSION"
  },
  "overrides": {
    "nan": "$NAN_VERSION"
  }
}
EOF
)
if [ ! -f "$DEST/package.json" ] || [ "$(cat "$DEST/package.json")" != "$pkg_json" ]; then
  printf '%s\n' "$pkg_json" > "$DEST/package.json"
fi

NZR="$DEST/node_modules/zmq-raft"
ADDON="$DEST/node_modules/zeromq/build/Release/zmq.node"

installed_ok() {
  [ -f "$NZR/bin/zmq-raft.js" ] && [ -f "$ADDON" ] || return 1
  [ "$(node -p 'require(process.argv[1] + "/package.json").version' "$NZR" 2>/dev/null)" = "$ZMQ_RAFT_VERSION" ] || return 1
  [ "$(node -p 'require(process.argv[1] + "/node_modules/nan/package.json").version' "$DEST" 2>/dev/null)" = "$NAN_VERSION" ] || return 1
  (cd "$DEST" && node -e 'require("zeromq"); require("debug")') >/dev/null 2>&1
}

# --- 4. npm install -------------------------------------------------------------------------------
# npm_config_zmq_external=true: zeromq's scripts/prepare.js then skips fetching/building libzmq 4.2.2
# (needs github + autotools) and binding.gyp links with -lzmq (the system libzmq5).
export npm_config_zmq_external=true
if installed_ok; then
  log "already installed in $DEST (skipping npm install)"
else
  log "npm install zmq-raft@$ZMQ_RAFT_VERSION debug@$DEBUG_VERSION (nan overridden to $NAN_VERSION) in $DEST"
  (cd "$DEST" && npm install --no-audit --no-fund --foreground-scripts >&2)
  if [ ! -f "$ADDON" ]; then
    # Newer npm versions may skip unapproved install scripts (npm 11 already warns about
    # "allowScripts"); then compile the addon directly with npm's bundled node-gyp.
    log "zeromq addon was not built by npm; running node-gyp rebuild directly"
    node_gyp="$(npm prefix -g)/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
    [ -f "$node_gyp" ] || node_gyp=$(command -v node-gyp) || die "node-gyp not found"
    (cd "$DEST/node_modules/zeromq" && node "$node_gyp" rebuild ${npm_config_nodedir:+--nodedir="$npm_config_nodedir"} >&2)
  fi
  installed_ok || die "install finished but zmq-raft/zeromq still do not load from $DEST"
fi

# --- 5. Check ---------------------------------------------------------------------------------------
node "$NZR/bin/zmq-raft.js" --version >/dev/null || die "zmq-raft.js does not run"
versions=$(cd "$DEST" && node -p '"zmq-raft " + require("zmq-raft/package.json").version +
  ", zeromq " + require("zeromq/package.json").version + " (libzmq " + require("zeromq").version + ")" +
  ", nan " + require("nan/package.json").version + ", debug " + require("debug/package.json").version +
  ", node " + process.version')
log "OK: $versions; $(( $(date +%s) - start ))s"
if ldd "$ADDON" 2>/dev/null | grep -q 'libzmq.so'; then
  log "addon links $(ldd "$ADDON" | awk '/libzmq.so/ {print $3}')"
fi
echo "export NZR=$NZR"
