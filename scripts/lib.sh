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
