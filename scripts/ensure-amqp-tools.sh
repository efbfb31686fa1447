#!/usr/bin/env bash
# Make sure Debian's amqp-tools (rabbitmq-c's command-line clients:
# amqp-publish, amqp-get, amqp-consume, amqp-declare-queue, ...) are
# installed: tests/interop runs them against the shared broker.
#
# Idempotent: when the tools are on PATH it does nothing. Otherwise it
# installs the Debian package with apt-get, as root (or through a sudo that
# needs no password); without either it fails and says what to install.
set -euo pipefail

tools=(amqp-publish amqp-get amqp-consume amqp-declare-queue amqp-delete-queue)

missing() {
    local tool
    for tool in "${tools[@]}"; do
        command -v "$tool" >/dev/null 2>&1 || return 0
    done
    return 1
}

if ! missing; then
    echo "tools: amqp-tools installed"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "tools: amqp-tools are missing and this user cannot install packages;" \
        "run 'apt-get install amqp-tools' as root" >&2
    exit 1
fi

echo "tools: installing amqp-tools (Debian package)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
# Quiet on success; the whole apt output when something goes wrong.
if ! { "${as_root[@]}" apt-get update -qq &&
    "${as_root[@]}" apt-get install -y -qq --no-install-recommends amqp-tools; } \
    >"$log" 2>&1; then
    cat "$log" >&2
    echo "tools: installing amqp-tools failed" >&2
    exit 1
fi
if missing; then
    echo "tools: amqp-tools installed, but not all of ${tools[*]} are on PATH" >&2
    exit 1
fi
echo "tools: amqp-tools installed"
