# shellcheck shell=bash
# Shared by devices/<board>/install.sh and verify.sh: argument handling, config and unit
# generation, service installation. A board script sets BOARD, DEFAULT_SOURCE, DEFAULT_BACKEND,
# EXTRAS, APT_PACKAGES and APT_OPTIONAL (arrays) and the functions board_checks and board_lacks,
# then calls install_main "$@" or verify_main "$@".
# APT_OPTIONAL entries read "package|what is not available without it": packages only a vendor's
# archive has (Raspberry Pi OS, JetPack), installed where the archive has them and reported otherwise.

DEVICES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_DIR=$(cd "$DEVICES_DIR/.." && pwd)

PREFIX=/opt/edgefer
CONFIG_DIR=/etc/edgefer
UNIT_DIR=/etc/systemd/system
PACKAGE=""
SOURCE=""
SOURCE_DEFAULTED=0
BACKEND=""
MODEL=""
MQTT_HOST=""
MQTT_TOPIC="edgefer/events"
HTTP_PORT=9108
DRY_RUN=0
PRINT_CONFIG=0
NO_SERVICE=0
FORCE_CONFIG=0

die() {
    printf '%s: error: %s\n' "$(basename "$0")" "$*" >&2
    exit 2
}

# Print the command in a dry run, run it otherwise.
run() {
    if [ "$DRY_RUN" = 1 ]; then
        printf '+ %s\n' "$*"
    else
        "$@"
    fi
}

install_usage() {
    cat <<EOF
Usage: $(basename "$0") [options]

Installs edgefer on a $BOARD: system packages, a venv in PREFIX with edgefer[$EXTRAS],
/etc/edgefer/config.toml and the edgefer systemd service (enabled and started).

  --prefix DIR        venv to install into (default: $PREFIX)
  --config-dir DIR    where config.toml goes (default: $CONFIG_DIR)
  --package SPEC      what pip installs (default: this checkout, $REPO_DIR)
  --source SPEC       frame source for the config (default: $DEFAULT_SOURCE)
  --backend NAME      litert, onnx or tensorrt (default: $DEFAULT_BACKEND)
  --model PATH        model artifact (default: the shipped one)
  --mqtt-host HOST    publish events to this MQTT broker (default: MQTT off)
  --mqtt-topic TOPIC  MQTT topic (default: $MQTT_TOPIC)
  --http-port PORT    /healthz and /metrics port on 127.0.0.1 (default: $HTTP_PORT)
  --force-config      overwrite an existing config.toml
  --no-service        do not install or start the systemd service
  --print-config      print the generated config.toml and exit
  --dry-run           print the commands instead of running them
  -h, --help          this help
EOF
}

# Option values must be present and must not look like another option.
need_value() {
    if [ $# -lt 2 ] || [ -z "$2" ] || [ "${2#--}" != "$2" ]; then
        die "$1 needs a value (see --help)"
    fi
}

parse_install_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --prefix) need_value "$@"; PREFIX=$2; shift 2 ;;
            --config-dir) need_value "$@"; CONFIG_DIR=$2; shift 2 ;;
            --package) need_value "$@"; PACKAGE=$2; shift 2 ;;
            --source) need_value "$@"; SOURCE=$2; shift 2 ;;
            --backend) need_value "$@"; BACKEND=$2; shift 2 ;;
            --model) need_value "$@"; MODEL=$2; shift 2 ;;
            --mqtt-host) need_value "$@"; MQTT_HOST=$2; shift 2 ;;
            --mqtt-topic) need_value "$@"; MQTT_TOPIC=$2; shift 2 ;;
            --http-port) need_value "$@"; HTTP_PORT=$2; shift 2 ;;
            --force-config) FORCE_CONFIG=1; shift ;;
            --no-service) NO_SERVICE=1; shift ;;
            --print-config) PRINT_CONFIG=1; shift ;;
            --dry-run) DRY_RUN=1; shift ;;
            -h|--help) install_usage; exit 0 ;;
            *) die "unknown option '$1' (see --help)" ;;
        esac
    done
    if [ -z "$SOURCE" ]; then
        SOURCE=$DEFAULT_SOURCE
        # shellcheck disable=SC2034  # read by the board's board_lacks
        SOURCE_DEFAULTED=1
    fi
    BACKEND=${BACKEND:-$DEFAULT_BACKEND}
    PACKAGE=${PACKAGE:-$REPO_DIR}
    case "$BACKEND" in
        litert|onnx|tensorrt) ;;
        *) die "--backend must be litert, onnx or tensorrt, not '$BACKEND'" ;;
    esac
    case "$HTTP_PORT" in
        ''|*[!0-9]*) die "--http-port must be a port number, not '$HTTP_PORT'" ;;
    esac
    if [ "$HTTP_PORT" -lt 1 ] || [ "$HTTP_PORT" -gt 65535 ]; then
        die "--http-port must be 1-65535, not $HTTP_PORT"
    fi
    case "$MQTT_TOPIC" in
        *'+'*|*'#'*|'') die "--mqtt-topic must be a plain topic without + or #, not '$MQTT_TOPIC'" ;;
    esac
}

# TOML basic string: backslash and double quote escaped.
toml_string() {
    local s=${1//\\/\\\\}
    printf '"%s"' "${s//\"/\\\"}"
}

render_config() {
    local mqtt_enabled=false
    [ -n "$MQTT_HOST" ] && mqtt_enabled=true
    cat <<EOF
# edgefer serve configuration for a $BOARD, written by devices/$BOARD/install.sh.
# Every key is documented in devices/$BOARD/config.example.toml; check it with
#   $PREFIX/bin/edgefer serve --config $CONFIG_DIR/config.toml --check-config

[source]
spec = $(toml_string "$SOURCE")

[model]
path = $(toml_string "$MODEL")
backend = $(toml_string "$BACKEND")

[outputs]
emit = "changes"

[outputs.jsonl]
enabled = true
path = "/var/lib/edgefer/events.jsonl"

[outputs.mqtt]
enabled = $mqtt_enabled
host = $(toml_string "${MQTT_HOST:-127.0.0.1}")
topic = $(toml_string "$MQTT_TOPIC")

[outputs.http]
enabled = true
host = "127.0.0.1"
port = $HTTP_PORT
EOF
}

# The unit with /opt/edgefer replaced by the install prefix.
render_unit() {
    sed "s#/opt/edgefer#$PREFIX#g" "$DEVICES_DIR/edgefer.service"
}

# Hosts the service must reach besides localhost (the unit has IPAddressDeny=any): the MQTT broker and
# a network camera (rtsp://, http://). Only the host of a URL, never its user:password.
network_hosts() {
    if [ -n "$MQTT_HOST" ]; then
        printf '%s\n' "$MQTT_HOST"
    fi
    case "$SOURCE" in
        *://*)
            local rest=${SOURCE#*://}
            rest=${rest%%/*}
            rest=${rest##*@}
            case "$rest" in
                \[*) rest=${rest#[}; printf '%s\n' "${rest%%]*}" ;;
                *) printf '%s\n' "${rest%%:*}" ;;
            esac ;;
    esac
}

# The drop-in that lets the service reach those hosts: their addresses as resolved now (a name that
# moves to another address later needs the installer run again, or a drop-in of your own).
render_network_dropin() {
    local host addrs
    printf '# Written by devices/%s/install.sh: what edgefer.service may reach besides localhost.\n[Service]\n' \
        "$BOARD"
    for host in $(network_hosts | sort -u); do
        addrs=$(getent ahosts "$host" | awk '{print $1}' | sort -u | tr '\n' ' ')
        [ -n "$addrs" ] || die "cannot resolve '$host' to an address for the service's IPAddressAllow="
        printf '# %s\nIPAddressAllow=%s\n' "$host" "${addrs% }"
    done
}

write_file() {  # write_file PATH MODE < content
    if [ "$DRY_RUN" = 1 ]; then
        printf '+ write %s (mode %s)\n' "$1" "$2"
        cat >/dev/null
    else
        install -D -m "$2" /dev/stdin "$1"
    fi
}

# True when apt can install PACKAGE from the configured archives (after apt-get update).
apt_has() {
    apt-cache policy "$1" 2>/dev/null | grep -q '^ *Candidate: [^(]'
}

install_packages() {
    run apt-get update
    run apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}"
    local entry package available=()
    for entry in "${APT_OPTIONAL[@]}"; do
        package=${entry%%|*}
        if [ "$DRY_RUN" = 1 ]; then
            printf '+ apt-get install -y --no-install-recommends %s  # where the archive has it; else: %s\n' \
                "$package" "${entry#*|}"
        elif apt_has "$package"; then
            available+=("$package")
        else
            printf 'note: %s is not in this system'"'"'s package archives, so %s\n' "$package" "${entry#*|}" >&2
            board_lacks "$package"
        fi
    done
    if [ ${#available[@]} -gt 0 ]; then
        run apt-get install -y --no-install-recommends "${available[@]}"
    fi
}

install_venv() {
    # --system-site-packages: the distribution's picamera2 / OpenCV / TensorRT bindings stay visible.
    run python3 -m venv --system-site-packages "$PREFIX"
    run "$PREFIX/bin/pip" install --upgrade pip
    # Keep the distribution's numpy: picamera2, python3-opencv and TensorRT's bindings are built
    # against it, and a newer pip numpy in the venv would break their C extensions.
    local constraints
    constraints=$(mktemp)
    if [ "$DRY_RUN" = 1 ]; then
        printf '+ pin numpy to the system version in %s\n' "$constraints"
    else
        python3 -c 'import numpy; print("numpy==" + numpy.__version__)' >"$constraints" 2>/dev/null || :
    fi
    run "$PREFIX/bin/pip" install --constraint "$constraints" "${PACKAGE}[${EXTRAS}]"
    rm -f "$constraints"
    # The pip OpenCV wheel would shadow the system one, which is built with GStreamer (Jetson: and CUDA)
    # and against the system numpy.
    run "$PREFIX/bin/pip" uninstall -y opencv-python-headless
    local wheels
    wheels=$(mktemp -d)
    # The verify sample is NASA's public-domain astronaut photo, read out of the scikit-image wheel.
    run "$PREFIX/bin/pip" download -q --no-deps --only-binary=:all: scikit-image -d "$wheels"
    run "$PREFIX/bin/python" -m edgefer.samples "$PREFIX/share/edgefer/sample.jpg" --wheel-dir "$wheels"
    rm -rf "$wheels"
}

install_config() {
    local target="$CONFIG_DIR/config.toml"
    if [ -e "$target" ] && [ "$FORCE_CONFIG" != 1 ]; then
        printf 'keeping the existing %s (--force-config replaces it)\n' "$target"
    else
        render_config | write_file "$target" 0644
    fi
    run "$PREFIX/bin/edgefer" serve --config "$target" --check-config
}

install_service() {
    render_unit | write_file "$UNIT_DIR/edgefer.service" 0644
    local dropin target
    for dropin in "$DEVICES_DIR/$BOARD"/edgefer.service.d/*.conf; do
        [ -e "$dropin" ] || continue
        target="$UNIT_DIR/edgefer.service.d/${dropin##*/}"
        write_file "$target" 0644 <"$dropin"
    done
    if [ -n "$(network_hosts)" ]; then
        render_network_dropin | write_file "$UNIT_DIR/edgefer.service.d/50-network.conf" 0644
    fi
    run systemctl daemon-reload
    run systemctl enable --now edgefer.service
}

install_main() {
    parse_install_args "$@"
    if [ "$PRINT_CONFIG" = 1 ]; then
        render_config
        return 0
    fi
    if [ "$DRY_RUN" != 1 ] && [ "$(id -u)" != 0 ]; then
        die "run as root (sudo $0 ...), or with --dry-run to see what it would do"
    fi
    board_checks
    install_packages
    install_venv
    install_config
    if [ "$NO_SERVICE" = 1 ]; then
        printf 'service not installed (--no-service); run it by hand: %s/bin/edgefer serve --config %s/config.toml\n' \
            "$PREFIX" "$CONFIG_DIR"
    else
        install_service
        printf 'edgefer.service installed; follow it with: journalctl -u edgefer -f\n'
    fi
    printf 'next: %s/verify.sh\n' "$DEVICES_DIR/$BOARD"
}
