"""Throw-away RabbitMQ nodes for fault-injection tests (DESIGN.md §5).

A :class:`BrokerNode` runs the installed ``rabbitmq-server`` as a *separate*
node that a test may stop, kill, pause, restart or put under a memory alarm.

Rules, which every change to this module must keep:

* **Never touch the shared broker.** The broker on 127.0.0.1:5672 (node
  ``rabbit@localhost``, run by the system as user ``rabbitmq``) is used by the
  integration tests and by CI after us. Nothing here stops, resets,
  reconfigures or signals it, and nothing changes its users, vhosts, plugins,
  cookie or files. ``rabbitmqctl`` is only ever run with ``-n <our node>``,
  ``erl_call`` only with ``-sname <our node>``.
* **Full isolation.** Each node has its own node name
  (``amqptest-<pid>-<n>@localhost``), AMQP port and distribution port (free
  ports, bound to 127.0.0.1), and its own HOME (so its own Erlang cookie),
  data, log, pid, config, advanced-config, enabled-plugins and
  ``rabbitmq-env.conf`` files under one temp dir. Hence the system's
  ``/etc/rabbitmq/rabbitmq-env.conf``, ``rabbitmq.conf`` and ``conf.d`` are
  never read, and no plugin (management on 15672, ...) is started twice.
  The Debian wrappers in ``/usr/sbin`` (which ``su`` to user ``rabbitmq``
  and write ``/var/log/rabbitmq/startup_log``) are bypassed: the scripts in
  ``/usr/lib/rabbitmq/bin`` are run directly, as the current user.
* **Signals only go to this node's processes:** the process tree under the
  ``rabbitmq-server`` script we started (its own session and process group).
  The host's epmd is shared and daemonised, it is never signalled.
* **Lean boots.** Booting is CPU-bound (about 5 CPU-seconds) and the
  machine is shared, so each node gets its own plugins dir holding links to
  just the applications it needs (``rabbit`` and the enabled plugins, with
  their dependencies; about a third less CPU than scanning all ~80 bundled
  plugins), and its Erlang VM does not busy-wait its schedulers
  (``+sbwt none``: idle nodes leave the CPUs to the tests).
* **Nothing can hang:** every wait and every ``rabbitmqctl`` call has a
  timeout.
* **Nothing is left behind:** :meth:`BrokerNode.close` (fixture finaliser,
  context manager), an :mod:`atexit` hook, and a watchdog process per running
  node that kills the node and removes its temp dir if the test process dies
  without cleaning up (SIGKILL, ``os._exit`` from a timeout).

Linux only (``/proc``, SIGSTOP/SIGCONT, process groups).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import itertools
import os
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

__all__ = [
    "BrokerError",
    "BrokerNode",
    "BrokerNotInstalledError",
    "Startable",
    "find_rabbitmq_sbin",
    "free_port",
    "free_ports",
    "random_cookie",
]

#: Environment variable naming a directory holding ``rabbitmq-server`` and
#: ``rabbitmqctl`` (the unwrapped scripts), to override auto-detection.
SBIN_ENV = "AMQP_TEST_RABBITMQ_SBIN"
#: Set to 1 to keep a node's temp dir (logs, data) after close, for debugging.
KEEP_DIR_ENV = "AMQP_TEST_KEEP_BROKER_DIR"

HOST = "127.0.0.1"
NODE_HOST = "localhost"
DEFAULT_START_TIMEOUT = 60.0
DEFAULT_STOP_TIMEOUT = 30.0
DEFAULT_CTL_TIMEOUT = 30.0
#: Watermark RabbitMQ uses when none is configured; restored by
#: ``set_memory_alarm(False)``.
DEFAULT_MEMORY_WATERMARK = "0.4"

# Well-known RabbitMQ ports and the CLI tools' distribution port range
# (35672-35682): a node of ours must never sit on one of them.
_AVOID_PORTS = frozenset(
    {1883, 4369, 5551, 5552, 5671, 5672, 8883, 15671, 15672, 15674, 15675}
    | {15692, 25672, 61613, 61614}
    | set(range(35672, 35683))
)
_SBIN_CANDIDATES = (Path("/usr/lib/rabbitmq/bin"),)
#: Flags for every node's Erlang VM: distribution on loopback only; no
#: scheduler busy-waiting (several nodes and the tests share two CPUs).
_ERL_ARGS = (
    "-kernel inet_dist_use_interface {127,0,0,1} "
    "+sbwt none +sbwtdcpu none +sbwtdio none"
)
#: The applications every node runs, whatever plugins it enables.
_BASE_APPS = ("rabbit", "rabbitmq_prelaunch")
_APP_DEPS_RE = re.compile(r"\{\s*(?:included_)?applications\s*,\s*\[([^\]]*)\]")
_ATOM_RE = re.compile(r"[a-z][A-Za-z0-9_@]*")
_counter = itertools.count(1)
_live: set[BrokerNode] = set()
_live_lock = threading.Lock()


class BrokerError(RuntimeError):
    """A throw-away node failed to start, stop or answer in time."""


class BrokerNotInstalledError(BrokerError):
    """``rabbitmq-server`` / ``rabbitmqctl`` cannot be found."""


# --------------------------------------------------------------------------
# Locating the installation


def find_rabbitmq_sbin() -> Path:
    """Return the directory holding the unwrapped ``rabbitmq-server`` script.

    Order: ``$AMQP_TEST_RABBITMQ_SBIN``; Debian's ``/usr/lib/rabbitmq/bin``;
    the directory ``rabbitmq-server`` on PATH resolves to (generic-unix
    tarball, Homebrew). Raises :class:`BrokerNotInstalledError` otherwise.
    """
    candidates: list[Path] = []
    if override := os.environ.get(SBIN_ENV):
        candidates.append(Path(override))
    candidates.extend(_SBIN_CANDIDATES)
    on_path = shutil.which("rabbitmq-server")
    if on_path is not None and not _is_debian_su_wrapper(Path(on_path)):
        candidates.append(Path(on_path).resolve().parent)
    for directory in candidates:
        if all(
            os.access(directory / tool, os.X_OK)
            for tool in ("rabbitmq-server", "rabbitmqctl")
        ):
            return directory
    raise BrokerNotInstalledError(
        "rabbitmq-server is not installed: looked for rabbitmq-server and "
        f"rabbitmqctl in {', '.join(map(str, candidates)) or '(nothing)'}. "
        "Install Debian's rabbitmq-server (`make broker` does) or set "
        f"{SBIN_ENV} to the directory holding the scripts."
    )


def _is_debian_su_wrapper(path: Path) -> bool:
    try:
        head = path.read_bytes()[:4096]
    except OSError:
        return False
    return b"su rabbitmq" in head


# --------------------------------------------------------------------------
# Processes (via /proc)


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat from field 3 (state) on, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes().decode("ascii", "replace")
    except OSError:
        return None
    return raw.rpartition(")")[2].split()


def _proc_comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str | None:
    fields = _proc_stat(pid)
    return fields[19] if fields else None


def _alive(pid: int) -> bool:
    """True if the pid exists and is not a zombie."""
    fields = _proc_stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def _process_tree(root: int) -> list[int]:
    """``root`` and all its live descendants (erl_child_setup calls setsid,
    so the process group alone does not cover port programs)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return [root]
    for entry in entries:
        if not entry.isdigit():
            continue
        fields = _proc_stat(int(entry))
        if fields is None or fields[0] in ("Z", "X"):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    tree: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in tree:
            continue
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return [pid for pid in tree if pid == root or _proc_comm(pid) != "epmd"]


def _signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _kill_tree(root: int, root_start: str | None) -> list[int]:
    """SIGKILL ``root``'s process group and tree; return the pids hit.

    ``root_start`` guards against pid reuse: if ``root`` is no longer the
    process we started, nothing is killed.
    """
    if root_start is None or _start_time(root) != root_start:
        return []
    pids = _process_tree(root)
    _signal_all(pids, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(root, signal.SIGKILL)
    return pids


def _wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait until none of ``pids`` is alive; return the survivors."""
    deadline = time.monotonic() + timeout
    left = [pid for pid in pids if _alive(pid)]
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        left = [pid for pid in left if _alive(pid)]
    return left


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (held open together
    while picking, so they differ)."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        for _ in range(200):
            if len(ports) == count:
                break
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(sock)
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
            if port not in _AVOID_PORTS and port not in ports:
                ports.append(port)
    finally:
        for sock in held:
            sock.close()
    if len(ports) != count:
        raise BrokerError("could not find free TCP ports on 127.0.0.1")
    return ports


def _answers_amqp(address: tuple[str, int]) -> bool:
    """True if ``address`` answers the AMQP 0-9-1 protocol header with a
    method frame (connection.start): an AMQP broker, not just any listener
    that happens to hold the port."""
    try:
        with socket.create_connection(address, timeout=1.0) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            return sock.recv(1) == b"\x01"
    except OSError:
        return False


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for an extra listener (TLS, ...) given
    through ``extra_config``; not one of RabbitMQ's well-known ports."""
    return free_ports(1)[0]


def random_cookie() -> str:
    """A fresh Erlang cookie (20 upper-case letters, as Erlang makes them)."""
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(20))


def _installed_apps(sbin: Path) -> dict[str, Path] | None:
    """Application name -> directory in the installation's plugins dir
    (``<RABBITMQ_HOME>/plugins``, next to the real ``sbin``), or None if
    that layout is not there or holds ``.ez`` archives (then the node uses
    the default plugins dir)."""
    plugins = (sbin / "rabbitmq-server").resolve().parent.parent / "plugins"
    try:
        entries = list(plugins.iterdir())
    except OSError:
        return None
    apps: dict[str, Path] = {}
    for entry in entries:
        if entry.suffix == ".ez":
            return None
        for app_file in entry.glob("ebin/*.app"):
            apps[app_file.stem] = entry
    return apps if all(name in apps for name in _BASE_APPS) else None


def _app_closure(apps: dict[str, Path], roots: Iterable[str]) -> set[str] | None:
    """``roots`` and every application they need (their ``.app`` files'
    ``applications`` and ``included_applications``) found in ``apps``;
    None if a root is not there (RabbitMQ then says which plugin is
    missing)."""
    needed: set[str] = set()
    todo = list(roots)
    if not all(root in apps for root in todo):
        return None
    while todo:
        name = todo.pop()
        if name in needed or name not in apps:  # not in plugins/: OTP's own
            continue
        needed.add(name)
        for app_file in apps[name].glob("ebin/*.app"):
            try:
                text = app_file.read_text("utf-8", "replace")
            except OSError:
                continue
            for match in _APP_DEPS_RE.finditer(text):
                todo.extend(_ATOM_RE.findall(match.group(1)))
    return needed


@functools.cache
def _erl_call_path() -> Path | None:
    """Erlang's ``erl_call`` next to the ``erl`` on PATH, or None."""
    erl = shutil.which("erl")
    if erl is None:
        return None
    root = Path(erl).resolve().parent.parent  # <otp>/bin/erl -> <otp>
    for pattern in ("erts-*/bin/erl_call", "lib/erl_interface-*/bin/erl_call"):
        for candidate in sorted(root.glob(pattern), reverse=True):
            if os.access(candidate, os.X_OK):
                return candidate
    return None


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_bytes()[-65536:].decode("utf-8", "replace")
    except OSError:
        return f"({path}: missing)"
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------
# The node


class Startable:
    """``with thing:`` starts it (and closes it again if the start fails,
    then re-raises); leaving the block closes it. For :class:`BrokerNode`
    and :class:`~tests.support.cluster.BrokerCluster`."""

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class BrokerNode(Startable):
    """One throw-away RabbitMQ node, isolated from the shared broker.

    Typical use::

        with BrokerNode() as node:      # starts, waits for await_startup
            connect(node.url)
            node.pause(); ...; node.resume()
            node.kill(); node.restart()
            node.set_memory_alarm(True)
        # stopped, temp dir removed

    ``extra_config`` lines are appended to the generated ``rabbitmq.conf``
    (e.g. TLS listeners); ``advanced_config`` replaces the ``[].`` of
    ``advanced.config``; ``plugins`` names plugins to enable (mind their
    ports: a plugin's default port may already be taken by the shared node).
    ``cookie`` is the Erlang cookie written to the node's HOME (random if
    not given): nodes that are to form a cluster share one (see
    tests/support/cluster.py). Both ``extra_config`` and ``plugins`` may be
    changed before :meth:`start`, which rewrites the files (a helper can so
    put files under :attr:`base_dir` and name them in the config). The
    node's plugins dir holds only ``plugins`` and their dependencies: a
    plugin to enable later (``rabbitmq-plugins enable``) must be named here.
    """

    def __init__(
        self,
        *,
        extra_config: Sequence[str] = (),
        advanced_config: str | None = None,
        plugins: Sequence[str] = (),
        start_timeout: float = DEFAULT_START_TIMEOUT,
        name_prefix: str = "amqptest",
        cookie: str | None = None,
    ) -> None:
        self._sbin = find_rabbitmq_sbin()
        if cookie is not None and not (
            cookie.isascii() and cookie.isalnum() and 0 < len(cookie) <= 255
        ):
            raise ValueError("cookie: expected 1..255 ASCII letters or digits")
        self.cookie = cookie or random_cookie()
        self.nodename = f"{name_prefix}-{os.getpid()}-{next(_counter)}@{NODE_HOST}"
        self.host = HOST
        self.port, self.dist_port = free_ports(2)
        self.extra_config = tuple(extra_config)
        self.advanced_config = advanced_config
        self.plugins = tuple(plugins)
        self.start_timeout = start_timeout
        self.base_dir = Path(tempfile.mkdtemp(prefix="amqptest-rmq-"))
        self.home_dir = self.base_dir / "home"
        self.mnesia_dir = self.base_dir / "mnesia"
        self.log_dir = self.base_dir / "log"
        self.console_log = self.log_dir / "console.log"
        self.log_file = self.log_dir / f"{self.nodename}.log"
        #: The node's own plugins dir (links), or None for the default one.
        self.plugins_dir: Path | None = None
        #: Seconds the last successful start / stop / kill took.
        self.last_start_seconds: float | None = None
        self.last_stop_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._proc_start: str | None = None
        self._console: IO[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._paused: list[int] = []
        self._started_once = False
        self._closed = False
        with _live_lock:
            _live.add(self)  # so atexit removes the temp dir even if unstarted
        self._write_files()

    # -- properties --------------------------------------------------------

    @property
    def url(self) -> str:
        """AMQP URL of this node (guest/guest, vhost ``/``)."""
        return f"amqp://guest:guest@{self.host}:{self.port}/%2F"

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def running(self) -> bool:
        """True while the node's OS process exists (even paused)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def paused(self) -> bool:
        return bool(self._paused)

    def beam_pids(self) -> list[int]:
        """Pids of the node's Erlang VM(s) (``beam.smp``)."""
        if not self.running:
            return []
        assert self._proc is not None
        return [
            pid
            for pid in _process_tree(self._proc.pid)
            if _proc_comm(pid).startswith("beam")
        ]

    def __repr__(self) -> str:
        state = "paused" if self.paused else "running" if self.running else "down"
        return f"<BrokerNode {self.nodename} port={self.port} {state}>"

    # -- files and environment --------------------------------------------

    def _write_files(self) -> None:
        for directory in (self.home_dir, self.mnesia_dir, self.log_dir):
            directory.mkdir(parents=True, exist_ok=True)
        (self.base_dir / "conf.d").mkdir(exist_ok=True)
        cookie = self.home_dir / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(self.cookie)
            cookie.chmod(0o400)
        conf = [
            "# Generated by tests/support/broker.py; throw-away test node.",
            f"listeners.tcp.default = {self.host}:{self.port}",
            "loopback_users = none",
            "log.console = true",
            "log.console.level = info",
            "log.file.level = info",
            *self.extra_config,
        ]
        (self.base_dir / "rabbitmq.conf").write_text("\n".join(conf) + "\n")
        (self.base_dir / "advanced.config").write_text(
            (self.advanced_config or "[].") + "\n"
        )
        (self.base_dir / "enabled_plugins").write_text(
            "[" + ",".join(self.plugins) + "].\n"
        )
        (self.base_dir / "rabbitmq-env.conf").write_text(
            "# Empty on purpose: keeps /etc/rabbitmq/rabbitmq-env.conf out.\n"
        )
        self._link_plugins()

    def _link_plugins(self) -> None:
        """(Re)build :attr:`plugins_dir`: links to the applications this node
        needs, so that booting scans those only (see the module docstring)."""
        apps = _installed_apps(self._sbin)
        needed = (
            None if apps is None else _app_closure(apps, (*_BASE_APPS, *self.plugins))
        )
        directory = self.base_dir / "plugins"
        shutil.rmtree(directory, ignore_errors=True)
        if apps is None or needed is None:
            self.plugins_dir = None
            return
        directory.mkdir()
        for name in sorted(needed):
            (directory / apps[name].name).symlink_to(apps[name])
        self.plugins_dir = directory

    def _env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("RABBITMQ_", "ERL_"))
            and key not in ("HOME", "NOTIFY_SOCKET", "detached", "SYS_PREFIX")
        }
        if "ERL_EPMD_PORT" in os.environ:  # must match the host's epmd
            env["ERL_EPMD_PORT"] = os.environ["ERL_EPMD_PORT"]
        base = self.base_dir
        env.update(
            HOME=str(self.home_dir),
            RABBITMQ_CONF_ENV_FILE=str(base / "rabbitmq-env.conf"),
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.mnesia_dir),
            RABBITMQ_LOG_BASE=str(self.log_dir),
            RABBITMQ_PID_FILE=str(base / f"{self.nodename}.pid"),
            RABBITMQ_CONFIG_FILE=str(base / "rabbitmq.conf"),
            RABBITMQ_CONFIG_FILES=str(base / "conf.d"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(base / "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(base / "enabled_plugins"),
            RABBITMQ_MOTD_FILE=str(base / "motd"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=_ERL_ARGS,
        )
        if self.plugins_dir is not None:
            env["RABBITMQ_PLUGINS_DIR"] = str(self.plugins_dir)
        env.setdefault("LANG", "C.UTF-8")
        return env

    def log_tail(self, lines: int = 40) -> str:
        """Last lines of the console output and of the node's log file."""
        return (
            f"--- {self.console_log} ---\n{_tail(self.console_log, lines)}\n"
            f"--- {self.log_file} ---\n{_tail(self.log_file, lines)}"
        )

    # -- rabbitmqctl -------------------------------------------------------

    def rabbitmqctl(
        self, *args: str, timeout: float = DEFAULT_CTL_TIMEOUT, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``rabbitmqctl -n <this node> *args`` with a hard timeout.

        Raises :class:`BrokerError` on timeout, or on a non-zero exit if
        ``check``.
        """
        cmd = [str(self._sbin / "rabbitmqctl"), "-n", self.nodename, *args]
        return self._run_tool(cmd, f"rabbitmqctl {' '.join(args)}", timeout, check)

    def _run_tool(
        self, cmd: list[str], what: str, timeout: float, check: bool
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.Popen(
            cmd,
            env=self._env(),
            cwd=self.base_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException as exc:  # timeout, or a test timeout / Ctrl-C
            _kill_tree(proc.pid, _start_time(proc.pid))  # not reaped: no reuse
            proc.kill()
            proc.communicate()
            if isinstance(exc, subprocess.TimeoutExpired):
                raise BrokerError(
                    f"{what} on {self.nodename} did not finish within {timeout:g} s"
                ) from None
            raise
        result = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
        if check and result.returncode != 0:
            raise BrokerError(
                f"{what} on {self.nodename} exited {result.returncode}:\n{out}{err}"
            )
        return result

    def call(
        self,
        module: str,
        function: str,
        args: str = "[]",
        *,
        timeout: float = DEFAULT_CTL_TIMEOUT,
    ) -> str:
        """Call ``module:function(args...)`` on this node; return the result
        as Erlang prints it (``['a@localhost','b@localhost']``, ``true``).

        Uses ``erl_call`` (a C program: milliseconds, where ``rabbitmqctl``
        boots an Erlang VM, about a CPU-second) with this node's cookie
        (from its HOME), or ``rabbitmqctl eval`` if ``erl_call`` is not
        installed. ``args`` is an Erlang list of the arguments.

        Raises:
            BrokerError: the node did not answer (down, booting, paused) or
                the call did not return within ``timeout`` seconds.
        """
        erl_call = _erl_call_path()
        if erl_call is None:
            return self.eval(
                f"{module}:{function}({args.strip()[1:-1]}).", timeout=timeout
            )
        cmd = [
            str(erl_call),
            "-sname",
            self.nodename,
            "-timeout",
            str(max(1, int(timeout))),
            "-a",
            f"{module} {function} {args}",
        ]
        what = f"erl_call {module}:{function}"
        result = self._run_tool(cmd, what, timeout + 5, check=True)
        out = result.stdout.strip()
        if out.startswith("{badrpc,") or out.startswith("{error,"):
            raise BrokerError(f"{what} on {self.nodename}: {out}")
        return out

    def eval(self, expression: str, *, timeout: float = DEFAULT_CTL_TIMEOUT) -> str:
        """``rabbitmqctl eval`` on this node; returns stdout, stripped."""
        return self.rabbitmqctl("eval", expression, timeout=timeout).stdout.strip()

    # -- lifecycle ---------------------------------------------------------

    def start(self, timeout: float | None = None) -> None:
        """Start the node and wait until it is fully booted.

        Waits until the AMQP port answers the protocol header with
        connection.start and ``rabbitmqctl await_startup`` succeeds. On
        failure the node is killed and :class:`BrokerError` carries the log
        tail. The first start retries with fresh ports if a port was taken
        meanwhile.
        """
        if self._closed:
            raise BrokerError(f"{self.nodename} is closed")
        if self.running:
            raise BrokerError(f"{self.nodename} is already running")
        timeout = self.start_timeout if timeout is None else timeout
        attempts = 1 if self._started_once else 3
        for attempt in range(1, attempts + 1):
            try:
                self._start_once(timeout)
            except BrokerError as exc:
                port_clash = "eaddrinuse" in str(exc).lower()
                if attempt == attempts or not port_clash:
                    raise
                self._pick_new_ports()
            else:
                self._started_once = True
                return

    def _pick_new_ports(self) -> None:
        """Choose fresh ports after a port clash on the first start (a
        subclass with extra listeners re-picks theirs too)."""
        self.port, self.dist_port = free_ports(2)

    def _start_once(self, timeout: float) -> None:
        began = time.monotonic()
        deadline = began + timeout
        self._write_files()
        self._console = self.console_log.open("ab")
        self._proc = subprocess.Popen(
            [str(self._sbin / "rabbitmq-server")],
            env=self._env(),
            cwd=self.base_dir,
            stdin=subprocess.DEVNULL,
            stdout=self._console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._proc_start = _start_time(self._proc.pid)
        try:
            self._spawn_watchdog()
            self._wait_for_port(deadline)
            self._await_startup(deadline)
        except BaseException as exc:
            self._kill_process()
            if isinstance(exc, BrokerError):
                raise BrokerError(
                    f"RabbitMQ node {self.nodename} (port {self.port}) failed "
                    f"to start: {exc}\n{self.log_tail()}"
                ) from None
            raise
        self.last_start_seconds = time.monotonic() - began

    def _await_startup(self, deadline: float) -> None:
        """Wait until RabbitMQ says it finished booting (plugins included):
        ``rabbit:await_startup()`` over ``erl_call``, else ``rabbitmqctl
        await_startup``."""
        remaining = max(1.0, deadline - time.monotonic())
        if _erl_call_path() is None:
            self.rabbitmqctl(
                "await_startup",
                "--timeout",
                str(int(remaining)),
                timeout=remaining + 5,
            )
            return
        result = self.call("rabbit", "await_startup", timeout=remaining)
        if result != "ok":
            raise BrokerError(f"rabbit:await_startup() returned {result}")

    def _wait_for_port(self, deadline: float) -> None:
        assert self._proc is not None
        while True:
            code = self._proc.poll()
            if code is not None:
                raise BrokerError(f"rabbitmq-server exited with code {code}")
            if _answers_amqp(self.address):
                return
            if time.monotonic() >= deadline:
                raise BrokerError(
                    f"AMQP port {self.port} did not answer the protocol header in time"
                )
            time.sleep(0.1)

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """Stop gracefully, SIGKILL if that fails or takes over ``timeout``.

        Graceful is ``rabbit:stop_and_halt()``, what ``rabbitmqctl stop``
        calls, here over ``erl_call`` (see :meth:`call`), then waiting for
        the process to exit. A paused node is resumed first. No-op if the
        node is not running.
        """
        if not self.running:
            self._reap()
            return
        assert self._proc is not None
        began = time.monotonic()
        if self._paused:
            self.resume()
        tree = _process_tree(self._proc.pid)
        try:
            self._stop_and_halt(min(timeout, DEFAULT_CTL_TIMEOUT))
            self._proc.wait(timeout=max(1.0, began + timeout - time.monotonic()))
        except (BrokerError, subprocess.TimeoutExpired):
            self._kill_process()
        else:
            survivors = _wait_gone(tree, 5.0)
            _signal_all(survivors, signal.SIGKILL)
            _wait_gone(survivors, 5.0)
            self._reap()
        self.last_stop_seconds = time.monotonic() - began

    def _stop_and_halt(self, timeout: float) -> None:
        if _erl_call_path() is None:
            self.rabbitmqctl("stop", timeout=timeout)
            return
        try:
            self.call("rabbit", "stop_and_halt", timeout=timeout)
        except BrokerError as exc:
            # The node may halt before its answer is out; an error other
            # than that (unreachable, a timeout) means: kill it.
            if "exited" not in str(exc) or "failed to connect" in str(exc):
                raise

    def kill(self) -> None:
        """SIGKILL the node's whole process tree (a crash; no clean shutdown).

        Returns once every process of the node is gone, so its ports are
        free. No-op if the node is not running.
        """
        began = time.monotonic()
        self._kill_process()
        self.last_stop_seconds = time.monotonic() - began

    def _kill_process(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            pids = _kill_tree(self._proc.pid, self._proc_start)
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired as exc:
                raise BrokerError(f"{self.nodename}: process survived SIGKILL") from exc
            left = _wait_gone(pids, 10.0)
            if left:
                raise BrokerError(f"{self.nodename}: pids {left} survived SIGKILL")
        self._reap()

    def _reap(self) -> None:
        """Forget a process that has exited; disarm its watchdog."""
        if self._proc is not None and self._proc.poll() is not None:
            self._proc = None
            self._proc_start = None
        if self._proc is None:
            self._paused = []
            if self._console is not None:
                self._console.close()
                self._console = None
            self._disarm_watchdog()

    def restart(self, *, graceful: bool = True, timeout: float | None = None) -> None:
        """Stop (or kill) and start again: same name, ports and data dir."""
        if graceful:
            self.stop()
        else:
            self.kill()
        self.start(timeout)

    def pause(self) -> None:
        """SIGSTOP the node's Erlang VM: sockets stay open but nothing is
        read or sent (heartbeat-timeout tests). Undo with :meth:`resume`."""
        if not self.running:
            raise BrokerError(f"{self.nodename} is not running")
        if self._paused:
            return
        beams = self.beam_pids()
        if not beams:
            raise BrokerError(f"{self.nodename}: no beam.smp process found")
        self._paused = beams
        _signal_all(beams, signal.SIGSTOP)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            states = [_proc_stat(pid) for pid in beams]
            if all(fields is None or fields[0] in ("T", "t") for fields in states):
                return
            time.sleep(0.01)
        raise BrokerError(f"{self.nodename}: beam did not stop on SIGSTOP")

    def resume(self) -> None:
        """SIGCONT what :meth:`pause` stopped."""
        paused, self._paused = self._paused, []
        _signal_all(paused, signal.SIGCONT)

    # -- alarms --------------------------------------------------------------

    def alarms(self) -> str:
        """``rabbit_alarm:get_alarms()`` as printed by ``rabbitmqctl eval``."""
        return self.eval("rabbit_alarm:get_alarms().")

    def memory_alarm_active(self) -> bool:
        return "resource_limit,memory" in self.alarms()

    def set_memory_alarm(self, on: bool, *, timeout: float = 15.0) -> None:
        """Raise or clear the memory alarm; returns once the node reports it.

        On: ``set_vm_memory_high_watermark 0`` (RabbitMQ: "0 blocks all
        publishing"); the alarm is raised synchronously and publishing
        connections get ``connection.blocked`` if they asked for it. Off:
        back to the default watermark 0.4. Not persistent over a restart.
        """
        value = "0" if on else DEFAULT_MEMORY_WATERMARK
        self.rabbitmqctl("set_vm_memory_high_watermark", value)
        deadline = time.monotonic() + timeout
        while self.memory_alarm_active() != on:
            if time.monotonic() >= deadline:
                raise BrokerError(
                    f"{self.nodename}: memory alarm not {'set' if on else 'clear'} "
                    f"after {timeout:g} s: {self.alarms()}"
                )
            time.sleep(0.2)

    # -- watchdog --------------------------------------------------------------

    def _spawn_watchdog(self) -> None:
        """Start a process that kills the node if we die without cleanup.

        It blocks reading a pipe from us: ``D`` disarms it; EOF (we exited
        without disarming) makes it SIGKILL the node's tree and remove the
        temp dir.
        """
        assert self._proc is not None
        self._watchdog = subprocess.Popen(
            [
                sys.executable,
                "-I",
                str(Path(__file__).resolve()),
                "--watchdog",
                str(self._proc.pid),
                self._proc_start or "",
                str(self.base_dir),
                os.environ.get(KEEP_DIR_ENV, ""),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _disarm_watchdog(self) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is None:
            return
        assert watchdog.stdin is not None
        with contextlib.suppress(OSError):
            watchdog.stdin.write(b"D")
            watchdog.stdin.flush()
        with contextlib.suppress(OSError):
            watchdog.stdin.close()
        try:
            watchdog.wait(timeout=5)
        except subprocess.TimeoutExpired:
            watchdog.kill()
            watchdog.wait(timeout=5)

    # -- teardown --------------------------------------------------------------

    def close(self, *, graceful: bool = False) -> None:
        """Stop the node (SIGKILL unless ``graceful``; the data is thrown
        away anyway) and remove its temp dir. Idempotent."""
        if self._closed:
            return
        try:
            if graceful and not self._paused:
                self.stop()
            else:
                self._kill_process()
        finally:
            try:
                self._kill_process()  # in case stop() raised half-way
            finally:
                self._closed = True
                with _live_lock:
                    _live.discard(self)
                if not os.environ.get(KEEP_DIR_ENV):
                    shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        if self.running:
            return self
        return super().__enter__()


@atexit.register
def _close_all_nodes() -> None:
    """Last resort: no node outlives the test process."""
    with _live_lock:
        nodes = list(_live)
    for node in nodes:
        with contextlib.suppress(Exception):
            node.close()


def _watchdog_main(argv: Sequence[str]) -> int:
    root, root_start, base_dir, keep_dir = argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        word = sys.stdin.buffer.read(1)
    except OSError:
        word = b""
    if word == b"D":
        return 0
    _kill_tree(int(root), root_start or None)
    if not keep_dir:
        shutil.rmtree(base_dir, ignore_errors=True)
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["--watchdog"]:
    sys.exit(_watchdog_main(sys.argv[2:]))
