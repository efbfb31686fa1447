"""User code type-checks under ``mypy --strict``, and misuse is reported
(DESIGN.md §4: ``conn.channel()`` is typed, so user code type-checks and a
wrong argument type is reported).

Checked as user code, each in its own module:

- every ```python block of README.md (how each one is made a module is the
  ``README_BLOCKS`` table below; a block it does not know fails
  ``test_every_readme_block_is_classified``);
- every ``examples/*.py``;
- misuse snippets for both fronts, each wrong line marked ``# E: <code>``:
  mypy must report that error on every marked line and on no other line;
- correct twins of them, which must pass with no error, and whose
  ``reveal_type(...)  # R: <type>`` lines must reveal that type (members of
  a union separated by `` | ``, each an ``fnmatch`` pattern).

mypy runs as a subprocess on a tree shaped like the installed package:
``amqp_client.spec`` is generated/ through setuptools' package-dir mapping,
which mypy cannot follow, so (as scripts/typecheck.py does) a temporary
directory holds ``amqp_client/<entry>`` symlinks to the source and
``amqp_client/spec`` -> generated/, and MYPYPATH points there. Errors inside
amqp_client itself are silenced (``follow_imports = silent``), as for an
installed package: they are the project's own mypy run's business, and here
only what user code sees counts.
"""

from __future__ import annotations

import ast
import fnmatch
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
EXAMPLES = ROOT / "examples"


# --- README blocks -----------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """How one README block becomes a module mypy can check."""

    #: what the block is, for a reader of this table
    why: str
    #: the block uses ``await`` at top level: wrap it in ``async def``
    wrap: bool = False
    #: the block goes on from the block before it (names defined there)
    continues: bool = False
    #: imports and names the README leaves implied, put above the block
    prelude: str = ""


#: Every ```python block of README.md, keyed by its first line.
README_BLOCKS: dict[str, Rule] = {
    "import asyncio": Rule("Quickstart (asyncio): a complete program"),
    "from amqp_client import blocking": Rule(
        "Quickstart (blocking): a complete program"
    ),
    "conn = await amqp_client.connect(": Rule(
        "Clusters and recovery: statements with a top-level await, using the"
        " package and a logger `log` the text takes as given",
        wrap=True,
        prelude="import logging\n\nimport amqp_client\n\nlog = logging.getLogger(__name__)\n",
    ),
    "from amqp_client import spec": Rule("The protocol layer: a complete program"),
    "# The global providers: nothing is recorded until the application sets up an SDK.": Rule(
        "OpenTelemetry: statements with a top-level await, using SDK providers"
        " `tp`, `mp`, a consumer and a handler the text takes as given",
        wrap=True,
        prelude=(
            "import amqp_client\n"
            "from amqp_client.aio import Consumer, Delivery\n"
            "from opentelemetry.sdk.metrics import MeterProvider\n"
            "from opentelemetry.sdk.trace import TracerProvider\n\n"
            'url = "amqp://"\n'
            "tp = TracerProvider()\n"
            "mp = MeterProvider()\n"
            "consumer: Consumer\n\n\n"
            "async def handle(delivery: Delivery) -> None: ...\n"
        ),
    ),
    "import amqp_client": Rule(
        "Consumer callbacks and graceful shutdown: a complete module (asyncio)"
    ),
    "import datetime": Rule(
        "Credentials that change: a complete module, but for the token"
        " endpoint it calls",
        prelude="async def my_token_endpoint() -> str:\n    return 'token'\n",
    ),
}


@dataclass(frozen=True)
class Block:
    line: int  # of the block's first line in README.md
    text: str

    @property
    def first_line(self) -> str:
        return next(
            (line.strip() for line in self.text.splitlines() if line.strip()), ""
        )


def python_blocks(markdown: str) -> list[Block]:
    """The ```python fenced blocks of a Markdown text; other fences skipped."""
    blocks: list[Block] = []
    fence: str | None = None  # the info string of the open fence
    start = 0
    body: list[str] = []
    for number, line in enumerate(markdown.splitlines(), 1):
        if fence is None:
            if line.startswith("```"):
                fence, start, body = line[3:].strip(), number + 1, []
        elif line.strip() == "```":
            if fence == "python":
                blocks.append(Block(start, "\n".join(body) + "\n"))
            fence = None
        else:
            body.append(line)
    assert fence is None, (
        f"README.md: the fence opened on line {start - 1} never closes"
    )
    return blocks


@dataclass(frozen=True)
class Snippet:
    name: str  # the module name mypy checks it under
    origin: str  # where it comes from, for messages
    source: str


def render(code: str, wrap: bool, prelude: str) -> str:
    if wrap:
        code = "async def _snippet() -> None:\n" + textwrap.indent(code, "    ")
    return f"{prelude}\n\n{code}" if prelude else code


def readme_snippets(blocks: Iterable[Block]) -> list[Snippet]:
    """One module per classified block; unclassified blocks are left to
    ``test_every_readme_block_is_classified``."""
    snippets: list[Snippet] = []
    code, prelude, wrap = "", "", False
    for index, block in enumerate(blocks, 1):
        rule = README_BLOCKS.get(block.first_line)
        if rule is None:
            code, prelude, wrap = "", "", False
            continue
        if rule.continues:
            code, prelude, wrap = (
                code + block.text,
                prelude + rule.prelude,
                wrap or rule.wrap,
            )
        else:
            code, prelude, wrap = block.text, rule.prelude, rule.wrap
        snippets.append(
            Snippet(
                f"readme_{index}",
                f"README.md block {index} (line {block.line})",
                render(code, wrap, prelude),
            )
        )
    return snippets


def example_snippets() -> list[Snippet]:
    return [
        Snippet(
            f"example_{path.stem}", f"examples/{path.name}", path.read_text("utf-8")
        )
        for path in sorted(EXAMPLES.glob("*.py"))
    ]


# --- misuse, and its correct twins ----------------------------------------------

MISUSE_AIO = Snippet(
    "misuse_aio",
    "wrong types, asyncio front",
    """\
import amqp_client


async def misuse() -> None:
    async with amqp_client.connect("amqp://localhost") as conn:
        ch = await conn.channel()
        number: int = await conn.channel()  # E: assignment
        await ch.queue_declare(queue=12)  # E: arg-type
        await ch.basic_publish("text")  # E: arg-type
        delivery = await ch.basic_get("tasks")
        if delivery is not None:
            await delivery.ack(multiple="yes")  # E: arg-type
    amqp_client.connect("amqp://localhost", credentials=42)  # E: arg-type
    amqp_client.connect("amqp://localhost", credentials="guest:guest")  # E: arg-type
    amqp_client.Credentials("u", "p", expires_at="tomorrow")  # E: arg-type
    amqp_client.connect("amqp://localhost", credentials=lambda: ("u", "p"))  # E: arg-type
    amqp_client.connect("amqp://localhost", busy_poll="200us")  # E: arg-type


def plain(delivery: amqp_client.Delivery) -> None:
    pass


async def wrong_callbacks(ch: amqp_client.Channel) -> None:
    await ch.basic_consume("q", callback=plain)  # E: arg-type
    await ch.basic_consume("q", callback=print)  # E: arg-type
    await ch.basic_consume("q", callback=plain, concurrency="3")  # E: arg-type
    await ch.close(timeout="soon")  # E: arg-type
""",
)

MISUSE_BLOCKING = Snippet(
    "misuse_blocking",
    "wrong types, blocking front",
    """\
from amqp_client import blocking


def misuse() -> None:
    with blocking.connect("amqp://localhost") as conn:
        ch = conn.channel()
        number: int = conn.channel()  # E: assignment
        conn.channel(timeout="5")  # E: arg-type
        ch.queue_declare(queue=12)  # E: arg-type
        ch.basic_publish("text")  # E: arg-type
        delivery = ch.basic_get("tasks")
        if delivery is not None:
            delivery.ack(multiple="yes")  # E: arg-type
        version: int = conn.server_version  # E: assignment
    blocking.connect("amqp://localhost", credentials=42)  # E: arg-type
    blocking.connect("amqp://localhost", busy_poll=None)  # E: arg-type


def takes_bytes(body: bytes) -> None:
    pass


def wrong_callbacks(ch: blocking.Channel) -> None:
    ch.basic_consume("q", callback=takes_bytes)  # E: arg-type
    ch.basic_consume("q", callback=len, concurrency=2.5)  # E: arg-type
    ch.connection.close(timeout="soon")  # E: arg-type
""",
)

CORRECT_AIO = Snippet(
    "correct_aio",
    "right types, asyncio front",
    """\
import datetime

import amqp_client


async def use() -> None:
    async with amqp_client.connect("amqp://localhost") as conn:
        reveal_type(await conn.channel())  # R: amqp_client.aio.channel.Channel
        reveal_type(conn.server_version)  # R: str
        reveal_type(conn.heartbeat)  # R: int
        reveal_type(conn.frame_max)  # R: int
        reveal_type(conn.channel_max)  # R: int
        # (In an R: pattern "?" stands for a bracket: fnmatch reads [...] as a set.)
        reveal_type(conn.local_address)  # R: tuple?str, int? | None
        reveal_type(conn.peer_address)  # R: tuple?str, int? | None
        reveal_type(conn.is_open)  # R: bool
        reveal_type(conn.is_blocked)  # R: bool
        product = conn.server_properties["product"]
        if isinstance(product, str):
            reveal_type(product)  # R: str
        ch: amqp_client.aio.Channel = await conn.channel()
        reveal_type(ch.is_open)  # R: bool
        ok = await ch.queue_declare(queue="tasks", durable=True)
        name: str = ok.queue
        reveal_type(await ch.basic_publish(b"x"))  # R: amqp_client.aio.*.Confirmation | None
        confirmation = await ch.basic_publish(b"x", routing_key=name)
        if confirmation is not None:
            await confirmation
        reveal_type(await ch.basic_get(name))  # R: amqp_client.aio.*.Delivery | None
        delivery = await ch.basic_get(name)
        if delivery is not None:
            body: bytes = delivery.body
            await delivery.ack(multiple=True)
        reveal_type(await ch.basic_consume(name))  # R: amqp_client.aio.*.Consumer
        async with await ch.basic_consume(name) as consumer:
            async for message in consumer:
                await message.ack()
                break
        await ch.close()


async def handle(delivery: amqp_client.aio.Delivery) -> None:
    async with delivery.process(requeue=True) as same:
        reveal_type(same)  # R: amqp_client.aio.*.Delivery
        settled: bool = same.settled


async def callbacks(ch: amqp_client.aio.Channel) -> None:
    consumer = await ch.basic_consume("q", callback=handle, concurrency=4)
    reveal_type(consumer)  # R: amqp_client.aio.*.Consumer
    await consumer.cancel(timeout=5)
    await ch.close(timeout=5)
    await ch.connection.close(timeout=None)


async def token() -> amqp_client.Credentials:
    expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)
    return amqp_client.Credentials("app", "token", expires_at=expires)


async def rotate() -> None:
    fixed = amqp_client.Credentials("app", "secret")
    async with amqp_client.connect("amqp://localhost", credentials=fixed) as conn:
        await conn.update_secret(b"rotated", "by hand")
    async with amqp_client.connect("amqp://localhost", credentials=token) as conn:
        conn.add_on_credentials_error_callback(print)
    async with amqp_client.connect(
        "amqp://localhost", credentials=lambda: fixed, recover=True
    ):
        pass
""",
)

CORRECT_BLOCKING = Snippet(
    "correct_blocking",
    "right types, blocking front",
    """\
from amqp_client import Credentials, blocking


def use() -> None:
    with blocking.connect("amqp://localhost") as conn:
        reveal_type(conn.channel())  # R: amqp_client.blocking.channel.Channel
        reveal_type(conn.server_version)  # R: str
        reveal_type(conn.heartbeat)  # R: int
        reveal_type(conn.local_address)  # R: tuple?str, int? | None
        reveal_type(conn.is_blocked)  # R: bool
        ch: blocking.Channel = conn.channel(timeout=5)
        reveal_type(ch.is_open)  # R: bool
        ok = ch.queue_declare(queue="tasks", durable=True)
        name: str = ok.queue
        reveal_type(ch.basic_publish(b"x"))  # R: amqp_client.blocking.*.Confirmation | None
        confirmation = ch.basic_publish(b"x", routing_key=name)
        if confirmation is not None:
            confirmation.wait(timeout=5)
        reveal_type(ch.basic_get(name))  # R: amqp_client.blocking.*.Delivery | None
        delivery = ch.basic_get(name)
        if delivery is not None:
            body: bytes = delivery.body
            delivery.ack(multiple=True)
        reveal_type(ch.basic_consume(name))  # R: amqp_client.blocking.*.Consumer
        with ch.basic_consume(name) as consumer:
            for message in consumer:
                message.ack()
                break
        ch.close()
    fixed = Credentials("app", "secret")
    with blocking.connect("amqp://localhost", credentials=lambda: fixed) as conn:
        conn.update_secret(b"rotated", timeout=5)
        conn.add_on_credentials_error_callback(print)


def handle(delivery: blocking.Delivery) -> None:
    with delivery.process() as same:
        reveal_type(same)  # R: amqp_client.blocking.*.Delivery
        settled: bool = same.settled


def callbacks(ch: blocking.Channel) -> None:
    consumer = ch.basic_consume("q", callback=handle, concurrency=4)
    reveal_type(consumer)  # R: amqp_client.blocking.*.Consumer
    consumer.cancel(timeout=5)
    ch.close(timeout=5)
    ch.connection.close(timeout=0)
""",
)


#: A marked error code, and the codes mypy may report the same mistake under:
#: a wrong argument to an overloaded method is "no overload variant matches".
SAME_MISTAKE = {"arg-type": {"arg-type", "call-overload"}}


def marked(snippet: Snippet, marker: str) -> dict[int, str]:
    """Line number -> the text after ``# <marker>:`` on that line."""
    found: dict[int, str] = {}
    for number, line in enumerate(snippet.source.splitlines(), 1):
        _, sep, tail = line.partition(f"  # {marker}: ")
        if sep:
            found[number] = tail.strip()
    return found


# --- running mypy -----------------------------------------------------------------

MYPY_CONFIG = """\
[mypy]
strict = True
python_version = 3.11

[mypy-amqp_client.*]
follow_imports = silent
"""

MESSAGE = re.compile(
    r"^(?P<path>[^:\n]+):(?P<line>\d+): (?P<severity>error|note|warning): "
    r"(?P<text>.*?)(?:  \[(?P<code>[a-z0-9-]+)\])?$"
)


@dataclass(frozen=True)
class Message:
    line: int
    severity: str
    text: str
    code: str | None

    def __str__(self) -> str:
        code = f"  [{self.code}]" if self.code else ""
        return f"{self.line}: {self.severity}: {self.text}{code}"


@dataclass(frozen=True)
class Result:
    returncode: int
    output: str
    messages: dict[str, list[Message]]  # by snippet name

    def errors(self, name: str) -> list[Message]:
        return [m for m in self.messages.get(name, []) if m.severity == "error"]

    def notes(self, name: str) -> dict[int, list[str]]:
        notes: dict[int, list[str]] = {}
        for m in self.messages.get(name, []):
            if m.severity == "note":
                notes.setdefault(m.line, []).append(m.text)
        return notes


class Mypy:
    """``mypy --strict`` over snippet modules, in a tree shaped like the
    installed package; the runs share one cache."""

    def __init__(self, base: Path) -> None:
        self.tree = base / "tree"
        package = self.tree / "amqp_client"
        package.mkdir(parents=True)
        for entry in sorted((ROOT / "amqp_client").iterdir()):
            if entry.name != "__pycache__":
                (package / entry.name).symlink_to(entry)
        (package / "spec").symlink_to(ROOT / "generated", target_is_directory=True)
        self.snippets = self.tree / "snippets"
        self.snippets.mkdir()
        self.config = base / "mypy.ini"
        self.config.write_text(MYPY_CONFIG, encoding="utf-8")
        self.cache = base / "mypy_cache"

    def run(self, snippets: Iterable[Snippet]) -> Result:
        files: dict[str, str] = {}
        for snippet in snippets:
            # A syntax error is a blocking error: mypy would stop there and
            # report nothing on the other snippets, which would look clean.
            ast.parse(snippet.source, f"{snippet.origin} ({snippet.name}.py)")
            relative = f"snippets/{snippet.name}.py"
            assert relative not in files, f"two snippets named {snippet.name}"
            (self.tree / relative).write_text(snippet.source, encoding="utf-8")
            files[relative] = snippet.name
        command = [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            str(self.config),
            "--cache-dir",
            str(self.cache),
            "--show-error-codes",
            "--no-error-summary",
            "--no-color-output",
            *files,
        ]
        env = {**os.environ, "MYPYPATH": str(self.tree)}
        done = subprocess.run(
            command, cwd=self.tree, env=env, capture_output=True, text=True, timeout=100
        )
        output = done.stdout + done.stderr
        # 0: clean, 1: errors found; anything else (2: mypy could not run,
        # a crash) would make every per-snippet check meaningless.
        assert done.returncode in (0, 1), output
        messages: dict[str, list[Message]] = {name: [] for name in files.values()}
        for line in output.splitlines():
            match = MESSAGE.match(line)
            assert match is not None and match["path"] in files, (
                f"unexpected mypy output: {line!r}\n{output}"
            )
            messages[files[match["path"]]].append(
                Message(
                    int(match["line"]), match["severity"], match["text"], match["code"]
                )
            )
        assert (done.returncode == 1) == any(
            m.severity == "error" for ms in messages.values() for m in ms
        ), output
        return Result(done.returncode, output, messages)


def listing(snippet: Snippet, messages: Iterable[Message]) -> str:
    """The snippet with line numbers, then mypy's messages on it."""
    lines = [
        f"{number:4}  {text}"
        for number, text in enumerate(snippet.source.splitlines(), 1)
    ]
    return "\n".join(
        [f"{snippet.origin} ({snippet.name}.py):", *lines, "mypy:", *map(str, messages)]
    )


README_SNIPPETS = readme_snippets(python_blocks(README.read_text("utf-8")))
USER_SNIPPETS = README_SNIPPETS + example_snippets()


@pytest.fixture(scope="module")
def mypy(tmp_path_factory: pytest.TempPathFactory) -> Mypy:
    return Mypy(tmp_path_factory.mktemp("typing"))


@pytest.fixture(scope="module")
def user_code(mypy: Mypy) -> Result:
    """One mypy run over every README block and example."""
    return mypy.run(USER_SNIPPETS)


# --- tests --------------------------------------------------------------------------


def test_every_readme_block_is_classified() -> None:
    blocks = python_blocks(README.read_text("utf-8"))
    assert blocks, "README.md has no ```python block: is this the right file?"
    first_lines = [block.first_line for block in blocks]
    unknown = [
        f"README.md line {block.line}: {block.first_line!r}"
        for block in blocks
        if block.first_line not in README_BLOCKS
    ]
    assert unknown == [], (
        "README.md has ```python blocks this test does not know how to check;"
        " add each first line to README_BLOCKS with a Rule:\n" + "\n".join(unknown)
    )
    repeated = sorted({line for line in first_lines if first_lines.count(line) > 1})
    assert repeated == [], f"README blocks that share a first line: {repeated}"
    stale = sorted(set(README_BLOCKS) - set(first_lines))
    assert stale == [], f"README_BLOCKS entries no README block starts with: {stale}"
    assert not README_BLOCKS[first_lines[0]].continues, (
        "the first block has no previous one"
    )


@pytest.mark.slow
@pytest.mark.parametrize("snippet", USER_SNIPPETS, ids=lambda s: s.name)
def test_user_code_type_checks(user_code: Result, snippet: Snippet) -> None:
    errors = user_code.errors(snippet.name)
    assert errors == [], listing(snippet, errors)


@pytest.mark.slow
@pytest.mark.parametrize("snippet", [MISUSE_AIO, MISUSE_BLOCKING], ids=lambda s: s.name)
def test_misuse_is_reported_on_every_line(mypy: Mypy, snippet: Snippet) -> None:
    expected = marked(snippet, "E")
    assert expected, "a misuse snippet marks its wrong lines with # E: <code>"
    result = mypy.run([snippet])
    assert result.returncode != 0, listing(snippet, [])
    errors = result.errors(snippet.name)
    reported = {(m.line, m.code) for m in errors}
    missed = sorted(
        (line, code)
        for line, code in expected.items()
        if not any((line, same) in reported for same in SAME_MISTAKE.get(code, {code}))
    )
    unexpected = sorted(m.line for m in errors if m.line not in expected)
    assert (missed, unexpected) == ([], []), (
        f"not reported (line, code): {missed}; errors on unmarked lines: {unexpected}\n"
        + listing(snippet, errors)
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "snippet", [CORRECT_AIO, CORRECT_BLOCKING], ids=lambda s: s.name
)
def test_correct_twin_passes_and_reveals_the_types(
    mypy: Mypy, snippet: Snippet
) -> None:
    result = mypy.run([snippet])
    errors = result.errors(snippet.name)
    assert errors == [], listing(snippet, errors)
    notes = result.notes(snippet.name)
    wrong: list[str] = []
    for line, pattern in marked(snippet, "R").items():
        revealed = [
            text.removeprefix("Revealed type is ").strip('"')
            for text in notes.get(line, [])
            if text.startswith("Revealed type is ")
        ]
        if len(revealed) != 1 or not type_matches(revealed[0], pattern):
            wrong.append(f"line {line}: revealed {revealed}, expected {pattern!r}")
    assert wrong == [], (
        "\n".join(wrong) + "\n" + listing(snippet, result.messages[snippet.name])
    )


def union_members(revealed: str) -> list[str]:
    """``A | B`` (mypy >= 1.11 on 3.10+) or ``Union[A, B]`` -> [A, B]."""
    match = re.fullmatch(r"Union\[(.*)\]", revealed)
    parts = match[1].split(", ") if match else revealed.split(" | ")
    return [part.strip() for part in parts]


def type_matches(revealed: str, pattern: str) -> bool:
    """Each union member matches one ``fnmatch`` pattern, one to one."""
    members = sorted(union_members(revealed))
    patterns = sorted(pattern.split(" | "))
    if len(members) != len(patterns):
        return False
    remaining = list(members)
    for wanted in patterns:
        hit = next((m for m in remaining if fnmatch.fnmatchcase(m, wanted)), None)
        if hit is None:
            return False
        remaining.remove(hit)
    return True


def test_the_checks_check() -> None:
    """The helpers behind the tests above, on fixed input."""
    markdown = (
        "text\n```sh\nmake test\n```\n```python\nimport asyncio\nx = 1\n```\n"
        "```\nplain\n```\n```python\nconn = await amqp_client.connect(\n```\n"
    )
    blocks = python_blocks(markdown)
    assert [(b.line, b.first_line) for b in blocks] == [
        (6, "import asyncio"),
        (13, "conn = await amqp_client.connect("),
    ]
    snippets = readme_snippets(blocks)
    assert snippets[0].source == "import asyncio\nx = 1\n"
    assert "async def _snippet() -> None:\n    conn = await" in snippets[1].source
    assert snippets[1].source.startswith("import logging")
    assert marked(MISUSE_AIO, "E")[8] == "arg-type"
    assert type_matches(
        "amqp_client.aio.channel.Confirmation | None",
        "amqp_client.aio.*.Confirmation | None",
    )
    assert type_matches(
        "Union[amqp_client.aio.channel.Delivery, None]",
        "None | amqp_client.aio.*.Delivery",
    )
    assert not type_matches("Any", "amqp_client.aio.*.Consumer")
    assert not type_matches(
        "amqp_client.aio.channel.Delivery", "amqp_client.aio.*.Delivery | None"
    )
    assert not type_matches(
        "amqp_client.blocking.channel.Channel", "amqp_client.aio.channel.Channel"
    )
    line = 'snippets/misuse_aio.py:8: error: Argument "queue" has incompatible type "int"; expected "str"  [arg-type]'
    match = MESSAGE.match(line)
    assert match is not None
    assert (match["path"], match["line"], match["code"]) == (
        "snippets/misuse_aio.py",
        "8",
        "arg-type",
    )
