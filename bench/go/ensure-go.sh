#!/usr/bin/env bash
# Make sure the Go toolchain and amqp091-go's source, which bench/go builds
# against offline, are installed: Debian's golang-go and
# golang-github-rabbitmq-amqp091-go-dev, installed with apt-get when
# missing (as scripts/ensure-broker.sh does for RabbitMQ). `make bench-go`
# runs this, then builds the worker (bench/e2e.py --build-go).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Where go.mod's replace directive takes amqp091-go from.
lib="$(awk '$1 == "replace" && $2 == "github.com/rabbitmq/amqp091-go" { print $NF }' "$here/go.mod")"

missing=()
command -v go >/dev/null 2>&1 || missing+=(golang-go)
[ -f "$lib/go.mod" ] || missing+=(golang-github-rabbitmq-amqp091-go-dev)
if [ "${#missing[@]}" -eq 0 ]; then
    echo "bench-go: $(go version | cut -d' ' -f3), amqp091-go at $lib"
    exit 0
fi
echo "bench-go: installing ${missing[*]} (Debian packages)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
if [ ! -f "$lib/go.mod" ]; then
    echo "bench-go: amqp091-go is still not at $lib (bench/go/go.mod's replace)" >&2
    exit 1
fi
