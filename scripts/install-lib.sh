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
