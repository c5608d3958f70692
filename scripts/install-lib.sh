# Shared by the test scripts (sourced, not run): installs what a fresh Debian 12
# machine with only the Rust toolchain lacks. CI runs as root; sudo otherwise.

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
APT_UPDATED=""

# apt_install PACKAGE... : one `apt-get update` per script run, then the packages.
apt_install() {
  if [ -z "$APT_UPDATED" ]; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
    APT_UPDATED=1
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# need_node: Node.js 18 or newer with npm, from apt when missing.
need_node() {
  if ! command -v node >/dev/null 2>&1; then
    echo "Installing Node.js and npm (apt)..."
    apt_install nodejs npm
  elif ! command -v npm >/dev/null 2>&1; then
    echo "Installing npm (apt)..."
    apt_install npm
  fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt 18 ]; then
    echo "error: Node.js 18 or newer is needed (found $(node --version))" >&2
    exit 1
  fi
}

# pip_venv VENV REQUIREMENTS WHAT: a virtual environment at VENV holding the
# pinned REQUIREMENTS, installed again when that file changes; python3 and
# its venv module (Debian's python3-venv) from apt when missing. Reports on
# stderr only: the tool scripts print a path on stdout.
pip_venv() {
  local venv=$1 requirements=$2 what=$3
  if ! command -v python3 >/dev/null 2>&1; then
    echo "Installing python3 and python3-venv (apt)..." >&2
    apt_install python3 python3-venv >&2
  elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "Installing python3-venv (apt)..." >&2
    apt_install python3-venv >&2
  fi
  if ! cmp -s "$requirements" "$venv/.requirements" 2>/dev/null; then
    echo "Installing $what into $venv (pip)..." >&2
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q -r "$requirements" >&2
    cp "$requirements" "$venv/.requirements"
  fi
}
