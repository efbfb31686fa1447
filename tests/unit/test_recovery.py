"""The recovery decisions both fronts share (amqp_client._recovery): which
endpoints, which errors reconnect, the backoff, the recorded topology."""

from __future__ import annotations

from typing import cast

import pytest
from amqp_client.spec import (
    BasicConsume,
    ExchangeBind,
    ExchangeDeclare,
    ExchangeDelete,
    ExchangeUnbind,
    QueueBind,
    QueueDeclare,
    QueueDeclareOk,
    QueueDelete,
    QueueUnbind,
)

from amqp_client.errors import (
    AuthenticationError,
    ConnectionClosed,
    ConnectionLost,
    HeartbeatTimeout,
)
from amqp_client.session import connect as conn_args
from amqp_client.session import recovery as rec

# --- endpoints -------------------------------------------------------------------------


def test_one_url_and_overrides() -> None:
    (params,) = conn_args.endpoints(
        "amqp://u:p@h1:1234/v", None, False, {"heartbeat": 7}
    )
    assert (params.host, params.port, params.vhost, params.heartbeat) == (
        "h1",
        1234,
        "v",
        7,
    )


def test_list_of_urls_in_order() -> None:
    result = conn_args.endpoints(["amqp://a", "amqps://b:9999"], None, False, {})
    assert [(p.host, p.port, p.tls) for p in result] == [
        ("a", 5672, False),
        ("b", 9999, True),
    ]


def test_hosts_take_the_urls_settings() -> None:
    result = conn_args.endpoints(
        "amqp://user:pw@a:1111/vh?heartbeat=5",
        ["b", "c:2222", "[::1]:3333", "[::1]"],
        False,
        {},
    )
    assert [(p.host, p.port) for p in result] == [
        ("a", 1111),
        ("b", 5672),
        ("c", 2222),
        ("::1", 3333),
        ("::1", 5672),
    ]
    assert {(p.username, p.password, p.vhost, p.heartbeat) for p in result} == {
        ("user", "pw", "vh", 5)
    }


def test_hosts_alone_use_the_default_url() -> None:
    result = conn_args.endpoints(None, ["x", "y:1"], False, {})
    assert [(p.host, p.port) for p in result] == [("x", 5672), ("y", 1)]


def test_shuffle_keeps_every_endpoint() -> None:
    hosts = [f"h{i}" for i in range(20)]
    orders = {
        tuple(p.host for p in conn_args.endpoints(None, hosts, True, {}))
        for _ in range(5)
    }
    assert all(sorted(order) == sorted(hosts) for order in orders)
    assert len(orders) > 1


@pytest.mark.parametrize(
    ("url", "hosts", "error"),
    [
        ([], None, ValueError),
        ([b"amqp://x"], None, TypeError),
        ("amqp://x", "h1,h2", TypeError),
        ("amqp://x", [1], TypeError),
        ("amqp://x", ["h:port"], ValueError),
        ("amqp://x", ["[::1"], ValueError),
        (None, [], ValueError),
    ],
)
def test_bad_endpoints_fail_before_io(url: object, hosts: object, error: type) -> None:
    with pytest.raises(error):
        conn_args.endpoints(url, hosts, False, {})  # type: ignore[arg-type]


def test_connect_arguments_check_types_and_options() -> None:
    with pytest.raises(TypeError, match="recover"):
        conn_args.connect_arguments(None, None, False, "yes", 0.5, 10, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="recovery_delay"):
        conn_args.connect_arguments(None, None, False, True, 5, 1, None)
    with pytest.raises(ValueError, match="recovery_attempts"):
        conn_args.connect_arguments(None, None, False, True, 0.5, 10, 0)
    _, options = conn_args.connect_arguments(None, None, False, False, 0.5, 10, None)
    assert options.recovery is None
    _, options = conn_args.connect_arguments(None, None, False, True, 0.1, 2, 3)
    assert options.recovery == rec.RecoveryOptions(0.1, 2, 3)


def test_connect_error_names_every_address_and_hides_passwords() -> None:
    lone = ConnectionLost("cannot connect to a:1: refused")
    assert conn_args.connect_error([("a:1", lone)]) is lone
    error = conn_args.connect_error(
        [("a:1", ConnectionLost("refused")), ("b:2", TimeoutError("timed out"))]
    )
    assert isinstance(error, ConnectionLost)
    assert "a:1: refused" in str(error) and "b:2: timed out" in str(error)
    timeouts = conn_args.connect_error(
        [("a:1", TimeoutError("t1")), ("b:2", TimeoutError("t2"))]
    )
    assert isinstance(timeouts, TimeoutError)


# --- which errors recover ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (None, False),
        (ConnectionLost("reset"), True),
        (HeartbeatTimeout(), True),
        (ConnectionClosed(320, "CONNECTION_FORCED - shutdown"), True),
        (ConnectionClosed(541, "INTERNAL_ERROR"), True),
        (ConnectionClosed(501, "FRAME_ERROR"), False),
        (ConnectionClosed(530, "NOT_ALLOWED"), False),
        (AuthenticationError(403, "ACCESS_REFUSED"), False),
    ],
)
def test_is_recoverable(error: ConnectionClosed | None, expected: bool) -> None:
    assert rec.is_recoverable(error) is expected


def test_lost_error_is_always_retryable() -> None:
    lost = ConnectionLost("x")
    assert rec.lost_error(lost) is lost
    forced = ConnectionClosed(320, "CONNECTION_FORCED")
    wrapped = rec.lost_error(forced)
    assert isinstance(wrapped, ConnectionLost)
    assert wrapped.__cause__ is forced


# --- backoff ----------------------------------------------------------------------------


def test_backoff_is_exponential_capped_and_jittered() -> None:
    seen: list[tuple[float, float]] = []

    def rng(low: float, high: float) -> float:
        seen.append((low, high))
        return high

    backoff = rec.Backoff(0.5, 4.0, rng)
    delays = [backoff.next() for _ in range(7)]
    assert delays == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert all(low == 0.5 for low, _ in seen)
    backoff.reset()
    assert backoff.next() == 0.0
    real = rec.Backoff(0.5, 4.0)
    real.next()
    assert all(0.5 <= real.next() <= 4.0 for _ in range(50))
    with pytest.raises(ValueError):
        rec.Backoff(2.0, 1.0)


# --- topology ---------------------------------------------------------------------------


def _steps(topology: rec.Topology) -> list[str]:
    return [step.method.NAME for step in topology.steps()]


def test_topology_records_and_orders_the_restore() -> None:
    t = rec.Topology()
    t.record(QueueBind("q1", "x1", "k"), None)  # bindings before their entities
    t.record(ExchangeDeclare("x1", "topic", durable=True), None)
    t.record(QueueDeclare("q1", durable=True), QueueDeclareOk("q1", 0, 0))
    t.record(ExchangeBind("x2", "x1", "k2"), None)
    t.record(ExchangeDeclare("x2", "fanout"), None)
    assert _steps(t) == [
        "exchange.declare",
        "exchange.declare",
        "queue.declare",
        "queue.bind",
        "exchange.bind",
    ]
    assert t.exchanges == ["x1", "x2"]
    assert t.queues == ["q1"]
    assert t.bindings == [("q1", "x1", "k")]
    assert t.exchange_bindings == [("x2", "x1", "k2")]


def test_passive_predeclared_and_duplicates_are_not_recorded() -> None:
    t = rec.Topology()
    t.record(QueueDeclare("q", passive=True), QueueDeclareOk("q", 0, 0))
    t.record(ExchangeDeclare("x", passive=True), None)
    t.record(ExchangeDeclare("amq.direct", "direct", durable=True), None)
    assert t.queues == [] and t.exchanges == []
    t.record(QueueBind("q", "x", "k"), None)
    t.record(QueueBind("q", "x", "k"), None)
    t.record(QueueBind("q", "x", "k", arguments={"a": 1}), None)
    assert t.bindings == [("q", "x", "k"), ("q", "x", "k")]


def test_deletes_and_unbinds_forget() -> None:
    t = rec.Topology()
    t.record(ExchangeDeclare("x"), None)
    t.record(ExchangeDeclare("y"), None)
    t.record(QueueDeclare("q"), QueueDeclareOk("q", 0, 0))
    t.record(QueueDeclare("r"), QueueDeclareOk("r", 0, 0))
    t.record(QueueBind("q", "x", "k"), None)
    t.record(QueueBind("r", "x", "k"), None)
    t.record(QueueBind("r", "y", "k"), None)
    t.record(ExchangeBind("y", "x", "k"), None)
    t.record(QueueUnbind("r", "y", "k"), None)
    assert ("r", "y", "k") not in t.bindings
    t.record(ExchangeUnbind("y", "x", "k"), None)
    assert t.exchange_bindings == []
    t.record(ExchangeBind("y", "x", "k"), None)
    t.record(QueueDelete("q"), None)
    assert t.queues == ["r"] and t.bindings == [("r", "x", "k")]
    t.record(ExchangeDelete("x"), None)
    assert t.exchanges == ["y"]
    assert t.bindings == [] and t.exchange_bindings == []


def test_server_named_queue_gets_its_new_name_and_bindings_follow() -> None:
    t = rec.Topology()
    renames: list[tuple[str, str]] = []
    t.on_rename = lambda old, new: renames.append((old, new))
    t.record(QueueDeclare("", exclusive=True), QueueDeclareOk("amq.gen-old", 0, 0))
    t.record(QueueBind("amq.gen-old", "x", "k", no_wait=True), None)
    steps = t.steps()
    declare = next(steps)
    assert isinstance(declare.method, QueueDeclare)
    assert declare.method.queue == "" and declare.method.exclusive
    assert declare.on_reply is not None
    declare.on_reply(QueueDeclareOk("amq.gen-new", 0, 0))
    bind = next(steps)
    assert isinstance(bind.method, QueueBind)
    assert bind.method.queue == "amq.gen-new"
    assert not bind.method.no_wait  # recovery waits for each reply
    assert renames == [("amq.gen-old", "amq.gen-new")]
    assert t.queues == ["amq.gen-new"]
    assert t.bindings == [("amq.gen-new", "x", "k")]
    # A named queue is redeclared under its own name, with no callback.
    t.record(QueueDeclare("named", durable=True, no_wait=True), None)
    named = [s for s in t.steps() if "named" in s.entity]
    redeclare = cast(QueueDeclare, named[0].method)
    assert redeclare.queue == "named" and named[0].on_reply is None
    assert not redeclare.no_wait


def test_consume_again_keeps_the_tag_and_options() -> None:
    original = BasicConsume(
        "old", "", no_ack=True, exclusive=True, arguments={"x-priority": 5}
    )
    again = rec.consume_again(original, "new", "ctag-1")
    assert (again.queue, again.consumer_tag, again.no_ack, again.exclusive) == (
        "new",
        "ctag-1",
        True,
        True,
    )
    assert dict(again.arguments or {}) == {"x-priority": 5}


@pytest.mark.parametrize(
    ("delay", "max_delay", "attempts", "error"),
    [
        ("x", 10.0, None, TypeError),
        (True, 10.0, None, TypeError),
        (0.5, float("inf"), None, ValueError),
        (0.5, 1e300, None, ValueError),
        (float("nan"), 10.0, None, ValueError),
        (0.5, 10.0, True, TypeError),
        (0.5, 10.0, 1.5, TypeError),
    ],
)
@pytest.mark.parametrize("recover", [True, False])
def test_recovery_keywords_are_checked_even_without_recovery(
    delay: object,
    max_delay: object,
    attempts: object,
    error: type[Exception],
    recover: bool,
) -> None:
    with pytest.raises(error):
        conn_args.connect_arguments(
            None,
            None,
            False,
            recover,
            delay,  # type: ignore[arg-type]  # the misuse under test
            max_delay,  # type: ignore[arg-type]  # the misuse under test
            attempts,  # type: ignore[arg-type]  # the misuse under test
        )
