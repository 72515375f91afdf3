# Shared by the scripts: install the Debian packages the build needs when they are missing.
# Sourced, not run.

SWITCHBOARD_PACKAGES=(pkg-config libsodium-dev libssl-dev libsqlite3-dev)

switchboard_install_packages() {
    local missing=()
    for package in "${SWITCHBOARD_PACKAGES[@]}" "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing missing system packages: ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
}

# Python packages the interoperability test uses (an independent client on PyPI's Noise library).
switchboard_install_python_packages() {
    python3 -c "import noise.connection, cryptography" 2>/dev/null && return 0
    echo "installing Python packages for the interop test: noiseprotocol cryptography" >&2
    python3 -m pip install -q noiseprotocol cryptography >&2
}
