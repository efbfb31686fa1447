"""Tests of the throw-away RabbitMQ cluster (tests/support/cluster.py).

The module shares one 3-node cluster (``rabbit_cluster``): it forms, a
quorum queue declared through amqp_client is replicated on every node and
stays available when its leader is killed, and a killed or stopped node
boots again and rejoins. Every test leaves all nodes running. The shared
broker on 127.0.0.1:5672 is never touched (checked around every test).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest

import amqp_client
from amqp_client import blocking
from tests.fault.test_broker_fixture import (
    assert_refused,
    listener_pid,
    read_connection_start,
    shared_broker_untouched,  # noqa: F401  (autouse: applies here too)
)
from tests.integration.helpers import unique
from tests.support import broker as broker_module
from tests.support.cluster import BrokerCluster

pytestmark = pytest.mark.fault

#: Bound on each wait in here, seconds.
WAIT = 30.0


def ctl_status(cluster: BrokerCluster, index: int) -> dict[str, Any]:
    """``rabbitmqctl -n <node index> cluster_status`` (the CLI's view)."""
    return cluster.cluster_status(cluster.nodes[index])


def queue_row(cluster: BrokerCluster, index: int, name: str) -> dict[str, Any]:
    rows = cluster.list_queues(
        cluster.nodes[index], "name", "type", "durable", "members", "online", "leader"
    )
    matching = [row for row in rows if row["name"] == name]
    assert len(matching) == 1, f"{name} not listed on node {index}: {rows}"
    return matching[0]


def wait_for_online(
    cluster: BrokerCluster, index: int, name: str, count: int
) -> dict[str, Any]:
    """Wait until node ``index`` lists ``count`` online members of ``name``
    (and a leader); return that ``list_queues`` row."""
    deadline = time.monotonic() + WAIT
    while True:
        row = queue_row(cluster, index, name)
        if len(row["online"]) == count and row["leader"] in cluster.nodenames:
            return row
        assert time.monotonic() < deadline, f"online members stayed {row}"
        time.sleep(0.5)


def wait_for_new_leader(
    cluster: BrokerCluster, index: int, name: str, old_leader: str
) -> dict[str, Any]:
    """Wait until node ``index`` lists a leader of ``name`` other than
    ``old_leader``, among the online members; return that row."""
    deadline = time.monotonic() + WAIT
    while True:
        row = queue_row(cluster, index, name)
        if row["leader"] != old_leader and row["leader"] in row["online"]:
            return row
        assert time.monotonic() < deadline, f"no new leader: {row}"
        time.sleep(0.5)


def assert_not_ours(address: tuple[str, int], cluster: BrokerCluster) -> None:
    """Nothing of ``cluster`` listens on ``address`` any more: the port
    refuses connections or, if another process on this shared machine has
    taken the freed port meanwhile, that process is not one of our nodes."""
    try:
        socket.create_connection(address, timeout=2.0).close()
    except ConnectionRefusedError:
        return
    pid = listener_pid(address[1])
    assert pid is not None, f"{address} accepts connections; listener not found"
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    ours = [n.nodename for n in cluster.nodes] + [
        str(n.base_dir) for n in cluster.nodes
    ]
    assert not any(mark.encode() in cmdline for mark in ours), (
        f"{address} is still served by our node: pid {pid} {cmdline!r}"
    )


def get_body(channel: blocking.Channel, queue: str) -> bytes:
    deadline = time.monotonic() + WAIT
    while (delivery := channel.basic_get(queue, no_ack=True)) is None:
        assert time.monotonic() < deadline, f"nothing arrived in {queue}"
        time.sleep(0.05)
    return delivery.body


def test_cluster_forms(rabbit_cluster: BrokerCluster) -> None:
    cluster = rabbit_cluster
    names = cluster.nodenames
    assert cluster.size == 3
    assert len(set(names)) == 3
    assert len({node.port for node in cluster.nodes}) == 3
    assert len({node.dist_port for node in cluster.nodes}) == 3
    assert len({node.base_dir for node in cluster.nodes}) == 3
    assert 5672 not in {node.port for node in cluster.nodes}
    cookies = {(node.home_dir / ".erlang.cookie").read_text() for node in cluster.nodes}
    assert cookies == {cluster.cookie}
    # Every node's CLI view: all three are members and running.
    for index in range(3):
        status = ctl_status(cluster, index)
        assert set(status["running_nodes"]) == set(names), status
        assert set(status["disk_nodes"]) == set(names), status
        assert status["partitions"] == {}, status
    # Each node speaks AMQP on its own URL.
    for url in cluster.urls:
        with blocking.connect(url, connection_timeout=10) as conn:
            assert conn.server_properties["product"] == "RabbitMQ"
    assert cluster.last_start_seconds is not None
    assert cluster.last_boot_seconds is not None
    print(
        f"\ncluster of 3: {cluster.last_start_seconds:.1f} s in all, boot "
        f"{cluster.last_boot_seconds:.1f} s (nodes "
        + ", ".join(f"{node.last_start_seconds:.1f}" for node in cluster.nodes)
        + f"), join {cluster.last_join_seconds:.1f} s"
    )


def test_quorum_queue_is_replicated_and_survives_its_leader(
    rabbit_cluster: BrokerCluster,
) -> None:
    cluster = rabbit_cluster
    queue = unique("quorum")
    with blocking.connect(cluster.urls[0], connection_timeout=10) as conn:
        ch = conn.channel()
        ok = ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
        assert ok.queue == queue
        ch.confirm_select()
        persistent = amqp_client.BasicProperties(delivery_mode=2)
        confirmation = ch.basic_publish(
            b"before", routing_key=queue, properties=persistent
        )
        assert confirmation is not None
        confirmation.wait(WAIT)
    # Another node sees a quorum queue with a member on every node.
    row = wait_for_online(cluster, 1, queue, 3)
    assert row["type"] == "quorum"
    assert row["durable"] is True
    assert set(row["members"]) == set(cluster.nodenames)
    leader = cluster.index_of(row["leader"])
    survivor = (leader + 1) % 3
    watcher = blocking.connect(cluster.urls[leader], connection_timeout=10)
    try:
        cluster.kill(leader)
        # A connection to the killed node is lost, not left hanging.
        assert isinstance(watcher.wait_closed(WAIT), amqp_client.ConnectionLost)
        with pytest.raises(amqp_client.ConnectionLost):
            blocking.connect(cluster.urls[leader], connection_timeout=5)
        status = ctl_status(cluster, survivor)
        assert cluster.nodenames[leader] not in status["running_nodes"]
        assert cluster.nodenames[leader] in status["disk_nodes"]
        # The two members left elect a new leader. (Until then RabbitMQ 3.10
        # answers basic.get with a connection error, 541 "nodedown", and a
        # passive declare with message_count 0.)
        row = wait_for_new_leader(cluster, survivor, queue, cluster.nodenames[leader])
        assert set(row["online"]) == set(cluster.nodenames) - {
            cluster.nodenames[leader]
        }
        # The queue serves from another node: the message published before
        # the kill, and a new one.
        with blocking.connect(cluster.urls[survivor], connection_timeout=10) as conn:
            ch = conn.channel()
            assert ch.queue_declare(queue, passive=True).message_count == 1
            assert get_body(ch, queue) == b"before"
            ch.confirm_select()
            confirmation = ch.basic_publish(b"after", routing_key=queue)
            assert confirmation is not None
            confirmation.wait(WAIT)
            assert get_body(ch, queue) == b"after"
        row = queue_row(cluster, survivor, queue)
        assert set(row["members"]) == set(cluster.nodenames)  # still a member
    finally:
        watcher.close()
        if not cluster.nodes[leader].running:
            cluster.start_node(leader)
    # The node came back into the cluster and its queue member with it.
    assert set(ctl_status(cluster, leader)["running_nodes"]) == set(cluster.nodenames)
    wait_for_online(cluster, leader, queue, 3)
    with blocking.connect(cluster.urls[leader], connection_timeout=10) as conn:
        ch = conn.channel()
        ch.queue_delete(queue)
        with pytest.raises(amqp_client.NotFoundError):
            conn.channel().queue_declare(queue, passive=True)


def test_stopped_node_restarts_and_rejoins(rabbit_cluster: BrokerCluster) -> None:
    cluster = rabbit_cluster
    index = 2
    node = cluster.nodes[index]
    beams = node.beam_pids()
    cluster.stop(index)
    try:
        assert not node.running
        assert_refused(node.address)
        status = ctl_status(cluster, 0)
        assert set(status["running_nodes"]) == set(cluster.nodenames) - {node.nodename}
        assert node.nodename in status["disk_nodes"]  # still a member
    finally:
        if not node.running:
            cluster.start_node(index)
    assert node.beam_pids() and set(node.beam_pids()).isdisjoint(beams)
    read_connection_start(node.address)
    status = ctl_status(cluster, index)
    assert set(status["running_nodes"]) == set(cluster.nodenames)
    assert node.last_start_seconds is not None
    print(f"\nrejoin after a graceful stop: boot {node.last_start_seconds:.1f} s")


def test_context_manager_cleans_up_everything() -> None:
    with BrokerCluster(2, name_prefix="amqpcm") as cluster:
        assert set(ctl_status(cluster, 1)["running_nodes"]) == set(cluster.nodenames)
        beams = [pid for node in cluster.nodes for pid in node.beam_pids()]
        trees = [
            child
            for node in cluster.nodes
            for child in broker_module._process_tree(node.beam_pids()[0])
        ]
        watchdogs = [
            node._watchdog.pid for node in cluster.nodes if node._watchdog is not None
        ]
        dirs = [node.base_dir for node in cluster.nodes]
        addresses = [node.address for node in cluster.nodes]
        assert len(beams) == 2
        assert len(watchdogs) == 2
        assert all(broker_module._alive(pid) for pid in watchdogs)
    assert broker_module._wait_gone(trees + watchdogs, 10.0) == []
    assert not any(path.exists() for path in dirs)
    for address in addresses:
        assert_not_ours(address, cluster)
    assert not any(node in broker_module._live for node in cluster.nodes)
    cluster.close()  # idempotent
