#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Check an edgefer install on a Raspberry Pi: config, detection on a sample, latency, service health.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
. "$HERE/../lib/common.sh"
# shellcheck source=../lib/verify.sh
. "$HERE/../lib/verify.sh"

BOARD=raspberry-pi
verify_main "$@"
