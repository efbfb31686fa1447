"""Plan the channel and connection API: which client-sent methods get a
typed method, their signatures, return types, and the runtime hooks for
what needs more than send-and-await-reply (publish, get, consume).

Owns: :data:`HOOKS`, :data:`HOOK_KINDS`, :data:`LIFECYCLE`, the API and
hook plans. Pure: no I/O, no jinja2; the method plans come from
codegen.plan, docstrings from codegen.docstrings.
"""

from __future__ import annotations

import keyword
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from codegen import naming
from codegen.docstrings import api_docstring
from codegen.fields import signature
from codegen.model import AMQPClass, Method, SpecError

if TYPE_CHECKING:
    from codegen.plan import MethodPlan


#: Client-sent methods the runtime drives itself (connection and channel
#: lifecycle); they get no generated API method. Replies to server-sent
#: methods (start-ok, tune-ok, close-ok, flow-ok...) are owned by the
#: runtime as well; see :func:`runtime_owned`.
LIFECYCLE = frozenset(
    {
        ("connection", "open"),
        ("connection", "close"),
        ("channel", "open"),
        ("channel", "close"),
    }
)

#: Classes whose API methods live on the connection, not the channel.
CONNECTION_CLASSES = frozenset({"connection"})


@dataclass(frozen=True)
class ApiMethod:
    name: str
    method: MethodPlan
    params: tuple[str, ...]  # rendered parameters after self
    params_no_wait_true: tuple[str, ...]  # the overload with no_wait: Literal[True]
    params_no_wait_false: tuple[str, ...]
    call: str  # the method class construction
    no_wait: str  # the name of the no-wait parameter, or ""
    kind: str  # "rpc", "send", "rpc_no_wait", or a hook's: "publish", "get", "consume"
    returns: str
    docstring: str
    hook: str = ""  # the runtime hook it hands over to ("_publish"...), or ""
    # What it hands the hook: the publish hook takes the arguments themselves.
    hook_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class HookPlan:
    """An abstract runtime hook of the channel API classes, declared because
    one of the spec's methods hands over to it."""

    name: str  # "_publish", "_get" or "_consume"
    params: tuple[str, ...]  # rendered parameters after self
    returns: str
    docstring: str


# --- the API --------------------------------------------------------------------


#: The runtime hooks for what needs more than send-and-await-reply, and the
#: kind of API method each makes (the api template's branch). The generated
#: API method checks the arguments and hands them to its hook, which each
#: front's channel implements; the hook's result is one of the channel API
#: classes' type parameters (PublishT, GetT, ConsumerT).
HOOK_KINDS: Mapping[str, str] = {
    "_publish": "publish",  # content out: the arguments, not a method object
    "_get": "get",  # a reply that may carry content, or an empty one
    "_consume": "consume",  # a reply, then deliveries for as long as it lasts
}

#: Which client-sent methods hand over to which runtime hook (see HOOK_KINDS).
#: A client-sent content method, or one whose reply carries content, needs
#: one: the plan refuses it otherwise (HookError). ``build`` takes another
#: table for a spec that is not AMQP's (the tests' tiny one).
HOOKS: Mapping[str, str] = {
    "basic.publish": "_publish",  # content out; a Confirmation in confirm mode
    "basic.get": "_get",  # a reply with content: a Delivery, or None
    "basic.consume": "_consume",  # a Consumer that deliveries flow into
}

#: What the consume hook's API method takes beyond the method's fields: the
#: callback each delivery goes to (its type is the API classes' CallbackT,
#: which each front sets) and how many run at once; (parameter, doc head, doc).
CONSUME_EXTRA: tuple[tuple[str, str, str], ...] = (
    (
        "callback: CallbackT | None = None",
        "callback (CallbackT | None):",
        "Each delivery goes to callback(delivery) (in asyncio a coroutine "
        "function) inside delivery.process(): acked when it returns, rejected "
        "(requeue=False) and logged when it raises; the consumer goes on. "
        "None: iterate the Consumer instead.",
    ),
    (
        "concurrency: int = 1",
        "concurrency (int):",
        "How many deliveries the callback handles at once (an int >= 1).",
    ),
)


class HookError(SpecError, ValueError):
    """A client-sent method and the runtime hooks (HOOKS) do not fit: it
    needs a hook it has not got, or its hook cannot drive it."""


def api_hook(
    mp: MethodPlan,
    responses: Sequence[MethodPlan],
    hooks: Mapping[str, str] = HOOKS,
) -> str:
    """The runtime hook ``mp``'s API method hands over to, or "" when
    ``_rpc``/``_send`` will do. ``responses`` are ``mp``'s replies.

    Raises:
        HookError: ``mp`` is a content method, or a reply of it carries
            content, and ``hooks`` has no hook for it; or its hook is not
            one of HOOK_KINDS, or cannot drive it.
    """
    method = mp.method
    where = f"{method.source}: {mp.name}"
    content_reply = any(r.method.content for r in responses)
    hook = hooks.get(mp.name, "")
    if not hook:
        if method.content:
            raise HookError(
                f"{where} is a client-sent content method without a runtime "
                "hook; add one to codegen.api.HOOKS"
            )
        if content_reply:
            raise HookError(
                f"{where} has a reply with content but no runtime hook; add "
                "one to codegen.api.HOOKS"
            )
        return ""
    if hook not in HOOK_KINDS:
        raise HookError(
            f"{where}: unknown runtime hook {hook!r} in codegen.api.HOOKS "
            f"(one of {', '.join(HOOK_KINDS)})"
        )
    if mp.amqp_class.name in CONNECTION_CLASSES:
        raise HookError(
            f"{where}: a connection method cannot have a runtime hook (they "
            "are the channel's); see codegen.api.HOOKS"
        )
    waits = bool(method.synchronous and responses)
    fits, what = {
        "_publish": (method.content and not waits, "a content method, no reply"),
        "_get": (
            waits and content_reply and not method.content,
            "a method whose reply carries content",
        ),
        "_consume": (
            waits and not content_reply and not method.content,
            "a method with a reply (without content)",
        ),
    }[hook]
    if not fits:
        raise HookError(
            f"{where}: its runtime hook {hook} (codegen.api.HOOKS) drives {what}"
        )
    return hook


def plan_hook(api: ApiMethod) -> HookPlan:
    """The abstract declaration of the hook ``api`` hands over to."""
    mp = api.method
    if api.hook == "_publish":
        props = naming.properties_class_name(mp.amqp_class.name)
        return HookPlan(
            name=api.hook,
            params=(
                "body: bytes",
                # The API method's parameters, without their defaults.
                *[f.param.split(" = ")[0] for f in mp.fields],
                f"properties: {props} | None",
                "timeout: float | None",
            ),
            returns=api.returns,
            docstring=f"Publish a message; what {api.name} returns (runtime hook).",
        )
    params = (f"method: {mp.class_name}", "timeout: float | None")
    if api.hook == "_get":
        return HookPlan(
            name=api.hook,
            params=params,
            returns=api.returns,
            docstring=f"Send {mp.name}; the message, or None when the queue is "
            "empty\n(runtime hook).",
        )
    return HookPlan(
        name=api.hook,
        params=(*params, "callback: CallbackT | None", "concurrency: int"),
        returns=api.returns,
        docstring=f"Start a consumer; what {api.name} returns (runtime hook).",
    )


def runtime_owned(cls: AMQPClass, method: Method) -> bool:
    """Whether the runtime sends ``method`` itself (no generated API method)."""
    if (cls.name, method.name) in LIFECYCLE:
        return True
    return any(
        method.name in other.responses and other.server_sent for other in cls.methods
    )


def plan_api(
    mp: MethodPlan,
    error_names: dict[str, str],
    by_name: dict[str, MethodPlan],
    hooks: Mapping[str, str] = HOOKS,
) -> ApiMethod:
    cls, method = mp.amqp_class, mp.method
    connection_level = cls.name in CONNECTION_CLASSES
    name = (
        naming.connection_api_name(method.name)
        if connection_level
        else naming.api_name(cls.name, method.name)
    )
    public = [f for f in mp.wire if not f.reserved]
    if keyword.iskeyword(name):
        name += "_"
    responses = [by_name[f"{cls.name}.{r}"] for r in method.responses]
    waits = bool(method.synchronous and responses)
    # The spec spells it "no-wait" (domain no-wait) everywhere but in
    # confirm.select, whose bit is "nowait".
    no_wait_field = next(
        (
            f
            for f in public
            if f.type == "bit"
            and (f.spec.domain == "no-wait" or f.spec_name in ("no-wait", "nowait"))
        ),
        None,
    )
    has_no_wait = waits and no_wait_field is not None
    no_wait_name = no_wait_field.name if no_wait_field is not None else ""
    extra = ("timeout: float | None = None",) if waits else ()
    content = method.content
    hook = api_hook(mp, responses, hooks)
    wire = mp.wire
    if hook == "_consume":
        # A consumer needs its consume-ok (its tag): no no-wait here.
        wire = tuple(f for f in wire if f is not no_wait_field)
        public = [f for f in public if f is not no_wait_field]
        has_no_wait, no_wait_name = False, ""
        extra = (*[param for param, _, _ in CONSUME_EXTRA], *extra)
    if content:
        params = (
            "body: bytes",
            "*",
            *[p for p in signature(wire) if p != "*"],
            f"properties: {naming.properties_class_name(cls.name)} | None = None",
            "timeout: float | None = None",
        )
    else:
        params = signature(wire, extra)
    args = ", ".join(
        [f.name for f in public if not f.keyword_only]
        + [f"{f.name}={f.name}" for f in public if f.keyword_only]
    )
    call = f"{mp.class_name}({args})"
    hook_args: tuple[str, ...] = ()
    if hook == "_publish":
        kind, returns = "publish", "PublishT"
        hook_args = (
            "body",
            *[f.name for f in public],
            "properties",
            "check_timeout(timeout)",
        )
        returns_doc = (
            "A Confirmation in confirm mode (settled by the broker's ack, "
            "nack or return), else None."
        )
    elif hook == "_get":
        kind, returns = "get", "GetT | None"
        returns_doc = "The message as a Delivery (with message_count), or None "
        returns_doc += "when the queue is empty."
    elif hook == "_consume":
        kind, returns = "consume", "ConsumerT"
        hook_args = ("method", "timeout", "callback", "concurrency")
        returns_doc = (
            "The Consumer: an iterator of deliveries, ended by a cancel from "
            "either side."
        )
    elif not waits:
        kind, returns = "send", "None"
        returns_doc = "None: the method has no reply."
    else:
        returns = " | ".join(r.class_name for r in responses)
        returns_doc = f"The reply: {returns}."
        kind = "rpc_no_wait" if has_no_wait else "rpc"
        if has_no_wait:
            returns_doc += " None when no_wait is true (nothing is awaited)."
    extra_docs = (
        [(head, text) for _, head, text in CONSUME_EXTRA] if hook == "_consume" else []
    )
    doc = api_docstring(
        cls, method, wire, returns_doc, error_names, content, extra_docs
    )

    def swap(params: tuple[str, ...], replacement: str) -> tuple[str, ...]:
        prefix = f"{no_wait_name}:"
        return tuple(
            f"{no_wait_name}: {replacement}"
            if no_wait_name and p.startswith(prefix)
            else p
            for p in params
        )

    return ApiMethod(
        name=name,
        method=mp,
        params=params,
        params_no_wait_true=swap(params, "Literal[True]"),
        params_no_wait_false=swap(params, "Literal[False] = False"),
        no_wait=no_wait_name,
        call=call,
        kind=kind,
        returns=returns,
        docstring=doc,
        hook=hook,
        hook_args=hook_args,
    )
