"""The docstrings of the generated classes and API methods: the spec's
prose, written once per method (everything else refers to it).

Owns: docstring layout (label, text, Args, replies, rules). Pure: text in,
text out, built on codegen.docs' reflowing; no codec, no names of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from codegen import docs, naming
from codegen.fields import PlanField, py_repr
from codegen.model import AMQPClass, Method, Rule

if TYPE_CHECKING:
    pass


# --- docstrings -------------------------------------------------------------------


def _field_doc(f: PlanField, indent: str = "    ") -> list[str]:
    default = "required" if f.required else f"default {py_repr(f.default)}"
    if f.type == "table":
        default = "default empty"
    kind = f.type if f.spec.domain == f.type else f"{f.spec.domain}: {f.type}"
    head = f"{f.name} ({kind}, {default}):"
    label = docs.sentence(f.label)
    text = " ".join(p for p in (label, *docs.paragraphs(f.doc)[:1]) if p)
    more = docs.paragraphs(f.doc)[1:]
    body = "\n\n".join([text, *more]) if text else "\n\n".join(more)
    return docs.hanging(head, body, indent)


def _rules(method: Method, fields: tuple[PlanField, ...]) -> list[tuple[str, Rule]]:
    rules: list[tuple[str, Rule]] = [("", r) for r in method.rules]
    for f in fields:
        rules += [(f"{f.name}.", r) for r in f.spec.rules]
    return rules


def method_docstring(
    cls: AMQPClass,
    method: Method,
    fields: tuple[PlanField, ...],
    error_names: dict[str, str],
) -> str:
    lines = [docs.sentence(method.label) or f"{cls.name}.{method.name}.", ""]
    lines += docs.fill(docs.text_of(method.docs))
    flags = []
    if method.synchronous:
        flags.append("synchronous")
    if method.content:
        flags.append("carries content")
    if method.deprecated:
        flags.append("deprecated")
    senders = []
    if method.client_sent:
        senders.append("client")
    if method.server_sent:
        senders.append("server")
    replies = (
        ", ".join(naming.class_name(cls.name, r) for r in method.responses) or "none"
    )
    lines += [
        "",
        *docs.fill(
            f"AMQP {cls.name}.{method.name} ({cls.index}/{method.index}); "
            f"{', '.join(flags) or 'asynchronous'}; sent by the {' and '.join(senders) or '?'}; "
            f"replies: {replies}."
        ),
    ]
    public = [f for f in fields if not f.reserved]
    if public:
        lines += ["", "Args:"]
        for f in public:
            lines += _field_doc(f)
    rules = docs.rules_section(_rules(method, fields), error_names)
    if rules:
        lines += ["", *rules]
    return docs.escape("\n".join(lines).strip())


def properties_docstring(cls: AMQPClass, fields: tuple[PlanField, ...]) -> str:
    lines = [
        f"Content properties of class {cls.name} ({cls.index}).",
        "",
        *docs.fill(
            "Every property is optional; None leaves it out of the content "
            "header (its flag bit stays clear). A timestamp is a datetime (a "
            "naive one is taken as UTC) or an int of seconds; decoded ones are "
            "UTC-aware datetimes, or the int of seconds when past year 9999."
        ),
        "",
        "Args:",
    ]
    for f in fields:
        head = f"{f.name} ({f.type}):"
        text = " ".join(
            p for p in (docs.sentence(f.label), *docs.paragraphs(f.doc)) if p
        )
        lines += docs.hanging(head, text, "    ")
    return docs.escape("\n".join(lines))


def api_docstring(
    cls: AMQPClass,
    method: Method,
    fields: tuple[PlanField, ...],
    returns: str,
    error_names: dict[str, str],
    content: bool,
    extra_docs: Sequence[tuple[str, str]] = (),
) -> str:
    lines = [docs.sentence(method.label) or f"{cls.name}.{method.name}.", ""]
    lines += docs.fill(docs.text_of(method.docs))
    lines += [
        "",
        *docs.fill(
            f"Sends {naming.class_name(cls.name, method.name)} "
            f"({cls.name}.{method.name})."
        ),
    ]
    public = [f for f in fields if not f.reserved]
    args: list[str] = []
    if content:
        args += docs.hanging("body (bytes):", "The message body.", "    ")
    for f in public:
        args += _field_doc(f)
    for head, text in extra_docs:
        args += docs.hanging(head, text, "    ")
    if content:
        props = naming.properties_class_name(cls.name)
        args += docs.hanging(
            f"properties ({props} | None):", "The content properties.", "    "
        )
    if content:
        args += docs.hanging(
            "timeout (float | None):",
            "Seconds publishing may wait while the broker blocks the "
            "connection, channel.flow pauses the channel, the socket is full "
            "or the connection recovers; None waits. TimeoutError when it "
            "passes, and nothing was sent.",
            "    ",
        )
    elif method.synchronous and method.responses:
        args += docs.hanging(
            "timeout (float | None):",
            "Seconds to wait for the reply; None waits until the connection "
            "fails. TimeoutError when it passes. A finite number >= 0; "
            "checked before anything is sent.",
            "    ",
        )
    if args:
        lines += ["", "Args:", *args]
    lines += ["", "Returns:"]
    lines += docs.fill(returns, "    ")
    codes = []
    for _, rule in _rules(method, fields):
        if rule.on_failure and rule.on_failure in error_names:
            name = error_names[rule.on_failure]
            if name not in codes:
                codes.append(name)
    raises = [
        *docs.hanging(
            "ChannelClosed:",
            "The broker closed the channel with a soft error"
            + (f" (such as {', '.join(codes)})" if codes else "")
            + "; the channel is unusable, the connection goes on.",
            "    ",
        ),
        *docs.hanging(
            "ConnectionClosed:", "The connection closed or was lost meanwhile.", "    "
        ),
        *docs.hanging(
            "TypeError, ValueError:",
            "An argument has the wrong type or is out of range; nothing was sent.",
            "    ",
        ),
    ]
    lines += ["", "Raises:", *raises]
    return docs.escape("\n".join(lines).strip())
