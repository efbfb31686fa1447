// The Go peer of bench/e2e.py: a worker driven by e2e.py's Python wrapper
// (see main.go). Built offline against Debian's packaged amqp091-go
// (golang-github-rabbitmq-amqp091-go-dev, 1.5.0 in bookworm); the version
// below is a label, the replace decides which source is compiled. The
// library's only requirement, go.uber.org/goleak, is imported by its tests
// alone, so the build needs no other module. `make bench-go` builds it.
module amqp-client.bench/go

go 1.19

require github.com/rabbitmq/amqp091-go v1.5.0

replace github.com/rabbitmq/amqp091-go => /usr/share/gocode/src/github.com/rabbitmq/amqp091-go
