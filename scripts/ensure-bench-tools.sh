#!/usr/bin/env bash
# Make sure what the benchmarks' own tests run is installed: valgrind
# (bench/rpc_cost.py counts instructions with callgrind) and the Go toolchain
# with amqp091-go (bench/e2e.py's Go peer, see bench/go/ensure-go.sh). Both
# are Debian packages, installed with apt-get when missing; idempotent.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if command -v valgrind >/dev/null 2>&1; then
    echo "tools: $(valgrind --version)"
else
    echo "tools: installing valgrind (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq valgrind >/dev/null
fi
bash "$here/../bench/go/ensure-go.sh"
