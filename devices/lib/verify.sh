# shellcheck shell=bash
# Shared by devices/<board>/verify.sh: checks an installed edgefer and prints a summary.
# Steps: configuration check, detection on a sample photo, a latency run over repeated
# frames (benchmarks/latency.py from this checkout; the runtime's per-stage timing table
# where the checkout has no benchmarks/), and the service's /healthz when it runs.

VERIFY_CONFIG=/etc/edgefer/config.toml
VERIFY_SAMPLE=""
VERIFY_MODEL=""
VERIFY_BACKEND=""
VERIFY_FRAMES=100
RESULTS=()
FAILED=0

verify_usage() {
    cat <<EOF
Usage: $(basename "$0") [options]

Checks an edgefer install on a $BOARD and prints a summary; exit status 1 if a check fails.

  --prefix DIR     the venv edgefer is installed in (default: $PREFIX)
  --config PATH    configuration to check, or 'none' (default: $VERIFY_CONFIG)
  --sample IMAGE   photo with a face (default: PREFIX/share/edgefer/sample.jpg, made by install.sh)
  --model PATH     artifact to test (default: the configured model, else the shipped one)
  --backend NAME   backend to test (default: the configured one, else from the model)
  --frames N       frames in the latency run (default: $VERIFY_FRAMES)
  -h, --help       this help
EOF
}

parse_verify_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --prefix) need_value "$@"; PREFIX=$2; shift 2 ;;
            --config) need_value "$@"; VERIFY_CONFIG=$2; shift 2 ;;
            --sample) need_value "$@"; VERIFY_SAMPLE=$2; shift 2 ;;
            --model) need_value "$@"; VERIFY_MODEL=$2; shift 2 ;;
            --backend) need_value "$@"; VERIFY_BACKEND=$2; shift 2 ;;
            --frames) need_value "$@"; VERIFY_FRAMES=$2; shift 2 ;;
            -h|--help) verify_usage; exit 0 ;;
            *) die "unknown option '$1' (see --help)" ;;
        esac
    done
    case "$VERIFY_FRAMES" in
        ''|*[!0-9]*|0) die "--frames must be a positive integer, not '$VERIFY_FRAMES'" ;;
    esac
    VERIFY_SAMPLE=${VERIFY_SAMPLE:-$PREFIX/share/edgefer/sample.jpg}
    [ -x "$PREFIX/bin/edgefer" ] || die "$PREFIX/bin/edgefer not found; run install.sh first or pass --prefix"
    [ -f "$VERIFY_SAMPLE" ] || die "sample photo $VERIFY_SAMPLE not found; pass --sample IMAGE"
}

record() {  # record PASS|FAIL|SKIP "what"
    RESULTS+=("$(printf '%-5s %s' "$1" "$2")")
    [ "$1" = FAIL ] && FAILED=1
    return 0
}

model_args() {
    MODEL_ARGS=()
    # Without --model/--backend, test what the service runs: the configured model and backend.
    if [ -z "$VERIFY_MODEL$VERIFY_BACKEND" ] && [ -f "$VERIFY_CONFIG" ]; then
        local configured
        if configured=$("$PREFIX/bin/python" -c '
import sys
from edgefer.runtime.serve.config import load_config
m = load_config(sys.argv[1]).model
print(m.path + "\t" + m.backend)' "$VERIFY_CONFIG" 2>/dev/null); then
            VERIFY_MODEL=${configured%%$'\t'*}
            VERIFY_BACKEND=${configured#*$'\t'}
        fi
    fi
    [ -n "$VERIFY_MODEL" ] && MODEL_ARGS+=(--model "$VERIFY_MODEL")
    [ -n "$VERIFY_BACKEND" ] && MODEL_ARGS+=(--backend "$VERIFY_BACKEND")
    return 0
}

verify_config() {
    if [ "$VERIFY_CONFIG" = none ]; then
        record SKIP "configuration (--config none)"
    elif [ ! -f "$VERIFY_CONFIG" ]; then
        record FAIL "configuration: $VERIFY_CONFIG does not exist"
    else
        # The verdict is on stdout; stderr also carries the backends' own start-up chatter (LiteRT's INFO).
        local msg err
        err=$(mktemp)
        if msg=$("$PREFIX/bin/edgefer" serve --config "$VERIFY_CONFIG" --check-config 2>"$err"); then
            record PASS "$msg"
        else
            record FAIL "$(grep -v '^INFO: ' "$err")"
        fi
        rm -f "$err"
    fi
}

verify_detection() {
    local out err faces
    err=$(mktemp)
    if ! out=$("$PREFIX/bin/edgefer" detect --source "$VERIFY_SAMPLE" "${MODEL_ARGS[@]}" --quiet 2>"$err"); then
        record FAIL "detection on $VERIFY_SAMPLE: $(tail -n 3 "$err")"
        rm -f "$err"
        return
    fi
    rm -f "$err"
    # The event is the JSON line on stdout; summarise its faces as "label probability, ...".
    if ! faces=$(printf '%s\n' "$out" | "$PREFIX/bin/python" -c '
import json, sys
event = next(json.loads(line) for line in sys.stdin if line.startswith("{"))
print(", ".join("%s %.2f" % (f["label"], f["probability"]) for f in event.get("faces", [])) or "none")' 2>&1); then
        record FAIL "detection on $VERIFY_SAMPLE: unreadable output: $faces"
    elif [ "$faces" = none ]; then
        record FAIL "detection on $VERIFY_SAMPLE: no face found"
    else
        record PASS "detection on $VERIFY_SAMPLE: $faces"
    fi
}

verify_latency() {
    local frames i summary
    frames=$(mktemp -d)
    # A folder of N links to the sample: N frames through decode, detect, preprocess and infer.
    for i in $(seq -w 1 "$VERIFY_FRAMES"); do
        ln -s "$(cd "$(dirname "$VERIFY_SAMPLE")" && pwd)/$(basename "$VERIFY_SAMPLE")" "$frames/$i.jpg"
    done
    local bench
    bench="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/benchmarks/latency.py"
    if [ -f "$bench" ]; then
        if summary=$("$PREFIX/bin/python" "$bench" --source "$frames" "${MODEL_ARGS[@]}" \
            --warmup 5 --iterations "$VERIFY_FRAMES" --pass-gap 0 2>&1); then
            record PASS "latency benchmark ($bench) over $VERIFY_FRAMES frames:"
            RESULTS+=("$(printf '%s\n' "$summary" | sed -e '/^INFO: /d' -e 's/^/      /')")
        else
            record FAIL "latency benchmark: $(printf '%s\n' "$summary" | tail -n 3)"
        fi
    elif summary=$("$PREFIX/bin/edgefer" detect --source "$frames" "${MODEL_ARGS[@]}" 2>&1 >/dev/null); then
        record PASS "latency over $VERIFY_FRAMES frames:"
        RESULTS+=("$(printf '%s\n' "$summary" | sed -e '/^INFO: /d' -e 's/^/      /')")
    else
        record FAIL "latency run: $summary"
    fi
    rm -rf "$frames"
}

verify_service() {
    if ! command -v systemctl >/dev/null 2>&1 || ! systemctl cat edgefer.service >/dev/null 2>&1; then
        record SKIP "service: edgefer.service is not installed"
        return
    fi
    if ! systemctl is-active --quiet edgefer.service; then
        record FAIL "service: edgefer.service is $(systemctl is-active edgefer.service); see journalctl -u edgefer"
        return
    fi
    local health
    if health=$("$PREFIX/bin/python" - "$VERIFY_CONFIG" <<'EOF' 2>&1
import json, sys, urllib.error, urllib.request
from edgefer.runtime.serve.config import load_config
http = load_config(sys.argv[1]).outputs.http
if not http.enabled:
    sys.exit("HTTP output disabled in the configuration")
try:
    body = urllib.request.urlopen(f"http://127.0.0.1:{http.port}/healthz", timeout=5).read()
except urllib.error.HTTPError as exc:
    body = exc.read()
state = json.loads(body)
print(json.dumps(state))
sys.exit(0 if state.get("ok") else 1)
EOF
    ); then
        record PASS "service: active, /healthz $health"
    else
        record FAIL "service: active but /healthz says $health"
    fi
}

verify_main() {
    parse_verify_args "$@"
    model_args
    verify_config
    verify_detection
    verify_latency
    verify_service
    printf 'edgefer verify on %s (%s)\n' "$BOARD" "$(uname -srm)"
    printf '%s\n' "${RESULTS[@]}"
    return "$FAILED"
}
