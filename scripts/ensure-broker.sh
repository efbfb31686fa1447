#!/usr/bin/env bash
# Make sure a RabbitMQ broker listens on 127.0.0.1:5672 (or AMQP_PORT).
# Uses the installed server if there is one, else installs Debian's
# rabbitmq-server. Never stops or reconfigures a broker that is running.
set -euo pipefail
port="${AMQP_PORT:-5672}"

listening() {
    python3 - "$port" <<'PY'
import socket, sys
s = socket.socket()
s.settimeout(1)
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

if listening; then
    echo "broker: listening on 127.0.0.1:$port"
    exit 0
fi
if ! command -v rabbitmq-server >/dev/null 2>&1; then
    echo "broker: installing rabbitmq-server (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq rabbitmq-server >/dev/null
fi
echo "broker: starting rabbitmq-server"
rabbitmq-server -detached
for _ in $(seq 1 60); do
    if listening; then
        echo "broker: listening on 127.0.0.1:$port"
        exit 0
    fi
    sleep 1
done
echo "broker: RabbitMQ did not start listening on port $port within 60 s" >&2
exit 1
