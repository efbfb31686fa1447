"""A throw-away RabbitMQ cluster for fault tests (quorum queues, failover).

A :class:`BrokerCluster` is ``size`` :class:`~tests.support.broker.BrokerNode`
instances on this machine, each with its own node name, AMQP and
distribution ports, HOME and data dir, which share one Erlang cookie and are
joined into one cluster. Everything :mod:`tests.support.broker` promises
holds for every node (the shared broker on 5672 is never touched,
``rabbitmqctl`` only ever runs with ``-n <one of our nodes>``, every wait is
bounded, a watchdog per node cleans up after a dead test process).

Forming it:

1. the nodes boot in parallel, one thread per node (each waits for its AMQP
   port and for ``rabbit:await_startup()``, see :meth:`BrokerNode.start`);
2. every node but the first (the seed) stops its RabbitMQ application,
   joins the seed, and starts it again: what ``rabbitmqctl stop_app``,
   ``join_cluster <seed>`` and ``start_app`` do, by calling the same
   functions (``rabbit:stop()``, ``rabbit_mnesia:join_cluster(Seed,
   disc)``, ``rabbit:start()``) over ``erl_call``
   (:meth:`BrokerNode.call`). A ``rabbitmqctl`` call boots an Erlang VM for
   about a CPU-second; with two CPUs shared by several test workers the six
   calls took 7-16 s, ``erl_call`` takes about 2 s in all. The joins run one
   node at a time, so they never race; the stops and starts in parallel;
3. :meth:`BrokerCluster.wait_until_running` polls every node (over
   ``erl_call`` too) until each lists all of them as running
   (``rabbit_nodes:all_running()``, what ``cluster_status`` shows as
   ``running_nodes``).

:meth:`BrokerCluster.cluster_status` and :meth:`BrokerCluster.list_queues`
are the ``rabbitmqctl`` views, for tests to assert on.

Use::

    with BrokerCluster(3) as cluster:
        conn = blocking.connect(cluster.urls[1])
        cluster.kill(0)              # crash one node
        cluster.start_node(0)        # boots it and waits until it rejoined
    # all nodes killed, temp dirs removed, watchdogs disarmed

In pytest, use the ``rabbit_cluster`` fixture of tests/conftest.py.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tests.support.broker import (
    DEFAULT_CTL_TIMEOUT,
    DEFAULT_START_TIMEOUT,
    BrokerError,
    BrokerNode,
    Startable,
    random_cookie,
)

__all__ = ["DEFAULT_CLUSTER_SIZE", "BrokerCluster"]

DEFAULT_CLUSTER_SIZE = 3
#: Seconds to wait for ``cluster_status`` to list the expected nodes.
DEFAULT_FORM_TIMEOUT = 60.0
#: Seconds each of stop_app, join_cluster and start_app may take.
DEFAULT_JOIN_TIMEOUT = 60.0


_ATOM_RE = re.compile(r"'([^']+)'")


def _call(
    node: BrokerNode, module: str, function: str, args: str = "[]"
) -> Callable[[], None]:
    """A thunk calling ``module:function(args)`` on ``node`` that raises
    unless the answer is ``ok`` (or ``{ok,already_member}``)."""

    def run() -> None:
        answer = node.call(module, function, args, timeout=DEFAULT_JOIN_TIMEOUT)
        if answer.replace(" ", "") not in ("ok", "{ok,already_member}"):
            raise BrokerError(
                f"{module}:{function} on {node.nodename} returned {answer}"
            )

    return run


class BrokerCluster(Startable):
    """``size`` throw-away RabbitMQ nodes joined into one cluster.

    Args:
        size: number of nodes (1 or more).
        extra_config, plugins: passed to every :class:`BrokerNode`.
        start_timeout: seconds each node may take to boot.
        form_timeout: seconds the cluster may take to list every node as
            running, after a start, a join or a restart.
        name_prefix: prefix of the node names
            (``<prefix>-<pid>-<n>@localhost``).
    """

    def __init__(
        self,
        size: int = DEFAULT_CLUSTER_SIZE,
        *,
        extra_config: Sequence[str] = (),
        plugins: Sequence[str] = (),
        start_timeout: float = DEFAULT_START_TIMEOUT,
        form_timeout: float = DEFAULT_FORM_TIMEOUT,
        name_prefix: str = "amqpcluster",
    ) -> None:
        if size < 1:
            raise ValueError(f"size: expected at least 1 node, got {size}")
        self.cookie = random_cookie()
        self.form_timeout = form_timeout
        self.nodes: list[BrokerNode] = []
        #: Seconds the last :meth:`start` took in all, and its phases.
        self.last_start_seconds: float | None = None
        self.last_boot_seconds: float | None = None
        self.last_join_seconds: float | None = None
        self._threads: list[threading.Thread] = []
        self._closed = False
        try:
            for _ in range(size):
                self.nodes.append(
                    BrokerNode(
                        extra_config=extra_config,
                        plugins=plugins,
                        start_timeout=start_timeout,
                        name_prefix=name_prefix,
                        cookie=self.cookie,
                    )
                )
        except BaseException:
            self.close()
            raise

    # -- what tests look at ------------------------------------------------

    @property
    def size(self) -> int:
        return len(self.nodes)

    @property
    def seed(self) -> BrokerNode:
        """The node the others joined."""
        return self.nodes[0]

    @property
    def urls(self) -> list[str]:
        """Each node's AMQP URL (guest/guest, vhost ``/``), by index."""
        return [node.url for node in self.nodes]

    @property
    def nodenames(self) -> list[str]:
        return [node.nodename for node in self.nodes]

    def index_of(self, nodename: str) -> int:
        """The index of the node called ``nodename``."""
        try:
            return self.nodenames.index(nodename)
        except ValueError:
            raise KeyError(f"{nodename} is not a node of this cluster") from None

    def running_indexes(self) -> list[int]:
        """Indexes of the nodes whose OS process is up."""
        return [i for i, node in enumerate(self.nodes) if node.running]

    def any_running(self) -> BrokerNode:
        """A running, unpaused node (for ``rabbitmqctl``)."""
        for i in self.running_indexes():
            if not self.nodes[i].paused:
                return self.nodes[i]
        raise BrokerError("no node of the cluster is running")

    def __repr__(self) -> str:
        return f"<BrokerCluster {self.nodes!r}>"

    # -- rabbitmqctl views -----------------------------------------------------

    def ctl_json(
        self, node: BrokerNode, *args: str, timeout: float = DEFAULT_CTL_TIMEOUT
    ) -> Any:
        """``rabbitmqctl -n <node> <args> --formatter json``, parsed."""
        out = node.rabbitmqctl(
            *args, "--formatter", "json", "--quiet", timeout=timeout
        ).stdout
        try:
            return json.loads(out)
        except ValueError as exc:
            raise BrokerError(
                f"rabbitmqctl {' '.join(args)} on {node.nodename}: not JSON: {out!r}"
            ) from exc

    def cluster_status(self, via: BrokerNode | None = None) -> dict[str, Any]:
        """``cluster_status`` as a dict (``running_nodes``, ``disk_nodes``...)
        as seen by ``via`` (default: any running node)."""
        node = via or self.any_running()
        status = self.ctl_json(node, "cluster_status")
        if not isinstance(status, dict):
            raise BrokerError(f"cluster_status on {node.nodename}: {status!r}")
        return status

    def list_queues(
        self, node: BrokerNode, *items: str, vhost: str = "/"
    ) -> list[dict[str, Any]]:
        """``list_queues -p <vhost> <items>`` on ``node`` as dicts."""
        rows = self.ctl_json(node, "list_queues", "-p", vhost, *items)
        if not isinstance(rows, list):
            raise BrokerError(f"list_queues on {node.nodename}: {rows!r}")
        return rows

    def erl_nodes(self, node: BrokerNode, function: str) -> set[str]:
        """Node names ``rabbit_nodes:<function>()`` returns on ``node``
        (``all``: the members; ``all_running``: those running RabbitMQ)."""
        return set(_ATOM_RE.findall(node.call("rabbit_nodes", function, timeout=10)))

    def wait_until_running(
        self,
        indexes: Iterable[int] | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        """Wait until the nodes of ``indexes`` (default: every node whose
        process is up and not paused) form the cluster: each is a member, and each of them
        sees exactly those nodes running RabbitMQ (what ``cluster_status``
        lists as ``running_nodes``). Asked over ``erl_call``
        (:meth:`BrokerNode.call`): milliseconds per poll.

        Raises:
            BrokerError: not so within ``timeout`` (default form_timeout).
        """
        if indexes is None:
            indexes = [i for i in self.running_indexes() if not self.nodes[i].paused]
        wanted = list(indexes)
        names = {self.nodes[i].nodename for i in wanted}
        deadline = time.monotonic() + (
            self.form_timeout if timeout is None else timeout
        )
        seen = "nothing yet"
        while True:
            try:
                for i in wanted:
                    node = self.nodes[i]
                    running = self.erl_nodes(node, "all_running")
                    members = self.erl_nodes(node, "all")
                    seen = (
                        f"{node.nodename} sees running {sorted(running)}, "
                        f"members {sorted(members)}"
                    )
                    if running != names or not names <= members:
                        break
                else:
                    return
            except BrokerError as exc:  # booting, or not answering yet
                seen = str(exc)
            if time.monotonic() >= deadline:
                raise BrokerError(
                    f"the cluster did not show {sorted(names)} running within "
                    f"{self.form_timeout if timeout is None else timeout:g} s: {seen}"
                )
            time.sleep(0.1)

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Boot every node in parallel, join them and wait for the cluster.

        On failure every node is killed (the cluster can be closed, not
        restarted) and :class:`BrokerError` says why.
        """
        if self._closed:
            raise BrokerError("the cluster is closed")
        began = time.monotonic()
        try:
            self._parallel([node.start for node in self.nodes], "start")
            self.last_boot_seconds = time.monotonic() - began
            joined = time.monotonic()
            joiners = self.nodes[1:]
            self._parallel([_call(n, "rabbit", "stop") for n in joiners], "stop_app")
            seed = f"['{self.seed.nodename}', disc]"
            for node in joiners:  # one at a time: joins must not race
                _call(node, "rabbit_mnesia", "join_cluster", seed)()
            self._parallel([_call(n, "rabbit", "start") for n in joiners], "start_app")
            self.wait_until_running(range(self.size))
            self.last_join_seconds = time.monotonic() - joined
        except BaseException:
            self._kill_all()
            raise
        self.last_start_seconds = time.monotonic() - began

    def _parallel(self, calls: Sequence[Callable[[], None]], what: str) -> None:
        """Run ``calls`` in one thread each; raise the first error."""
        errors: list[BaseException | None] = [None] * len(calls)

        def run(index: int) -> None:
            try:
                calls[index]()
            except BaseException as exc:  # reported to the caller below
                errors[index] = exc

        self._threads = [
            threading.Thread(target=run, args=(i,), name=f"cluster-{what}-{i}")
            for i in range(len(calls))
        ]
        for thread in self._threads:
            thread.start()
        self._join_threads()
        failed = [(i, exc) for i, exc in enumerate(errors) if exc is not None]
        if failed:
            details = "\n".join(f"node {i}: {exc}" for i, exc in failed)
            raise BrokerError(f"cluster {what} failed:\n{details}") from failed[0][1]

    def _join_threads(self) -> None:
        # Each call is bounded by its own timeouts; this bound is a backstop.
        deadline = time.monotonic() + max(n.start_timeout for n in self.nodes) + 60
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]

    def kill(self, index: int) -> None:
        """SIGKILL node ``index`` (a crash) and wait until the remaining
        running nodes no longer list it as running."""
        self.nodes[index].kill()
        self._wait_others(index)

    def stop(self, index: int) -> None:
        """Stop node ``index`` gracefully (:meth:`BrokerNode.stop`:
        ``rabbit:stop_and_halt()`` over ``erl_call``) and wait until the
        remaining running nodes no longer list it as running."""
        self.nodes[index].stop()
        self._wait_others(index)

    def _wait_others(self, index: int) -> None:
        others = [i for i in self.running_indexes() if i != index]
        if others:
            self.wait_until_running(others)

    def start_node(self, index: int, timeout: float | None = None) -> None:
        """Boot node ``index`` again (same name, ports and data dir: it is
        still a member) and wait until every running node lists it."""
        self.nodes[index].start(timeout)
        self.wait_until_running()

    # -- teardown --------------------------------------------------------------

    def _kill_all(self) -> None:
        self._join_threads()
        errors: list[BaseException] = []
        for node in self.nodes:
            try:
                node.kill()
            except BaseException as exc:  # kill the others first
                errors.append(exc)
        if errors:
            raise errors[0]

    def close(self) -> None:
        """Kill every node, disarm the watchdogs and remove the temp dirs.
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._join_threads()
        errors: list[BaseException] = []
        for node in self.nodes:
            try:
                node.close()
            except BaseException as exc:  # close the others first
                errors.append(exc)
        if errors:
            raise errors[0]
