"""Turn the spec model into render-ready plans: the last step before render.

read spec (codegen.loader, codegen.overlay) -> model (codegen.model) ->
plan (this module, with codegen.fields, codegen.codec, codegen.propcodec,
codegen.docstrings and codegen.api) -> render (codegen.render).

Owns: the plan dataclasses the templates read and :func:`build`, which
assembles them for a whole spec. Pure: no I/O, no jinja2; the templates
only place what the plan computed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from codegen import docs, naming
from codegen.api import (
    CONNECTION_CLASSES,
    HOOK_KINDS,
    HOOKS,
    ApiMethod,
    HookError,
    HookPlan,
    plan_api,
    plan_hook,
    runtime_owned,
)
from codegen.codec import c_kinds, content_frames_lines, method_codec
from codegen.docstrings import method_docstring, properties_docstring
from codegen.fields import (
    PARAM_ANNOTATIONS,
    PlanField,
    field_uses,
    init_lines,
    plan_fields,
    signature,
)
from codegen.model import AMQPClass, Constant, Method, Spec
from codegen.propcodec import plan_properties, properties_codec


@dataclass(frozen=True)
class MethodPlan:
    amqp_class: AMQPClass
    method: Method
    class_name: str
    name: str
    class_id: int
    method_id: int
    fields: tuple[PlanField, ...]
    wire: tuple[PlanField, ...]
    responses: tuple[str, ...]
    docstring: str
    init_lines: tuple[str, ...]
    encode_lines: tuple[str, ...]
    decode_lines: tuple[str, ...]
    structs: tuple[str, ...]
    signature: tuple[str, ...]
    # A content method of a class with properties: the body of its static
    # ``frames`` and the properties class it takes; else empty.
    frames_lines: tuple[str, ...] = ()
    properties_class: str = ""
    # The C decoder's layout (see c_kinds).
    c_kinds: str = ""
    c_names: tuple[str | None, ...] = ()

    @property
    def index(self) -> int:
        return (self.class_id << 16) | self.method_id

    @property
    def frames_signature(self) -> tuple[str, ...]:
        return (
            "channel: int",
            "frame_max: int",
            f"properties: {self.properties_class} | None",
            "body: bytes | bytearray | memoryview",
            *self.signature,
        )


@dataclass(frozen=True)
class PropertiesPlan:
    amqp_class: AMQPClass
    class_name: str
    fields: tuple[PlanField, ...]
    docstring: str
    init_lines: tuple[str, ...]
    encode_lines: tuple[str, ...]
    decode_lines: tuple[str, ...]
    structs: tuple[str, ...]
    signature: tuple[str, ...]
    # The C decoder's layout (see c_kinds); empty when it cannot read these
    # properties (more than one flag word).
    c_kinds: str = ""
    c_names: tuple[str | None, ...] = ()


@dataclass(frozen=True)
class ErrorPlan:
    class_name: str
    base: str
    code: int
    constant: str
    docstring: str


@dataclass(frozen=True)
class ModulePlan:
    amqp_class: AMQPClass
    module: str
    methods: tuple[MethodPlan, ...]
    structs: tuple[str, ...]
    # The runtime and stdlib names its code uses (codegen.imports.SOURCES).
    uses: tuple[str, ...] = ()


@dataclass(frozen=True)
class SpecPlan:
    spec: Spec
    header: str
    constants: tuple[tuple[str, int, str], ...]
    reply_codes: tuple[tuple[str, int, str], ...]
    class_ids: tuple[tuple[str, int], ...]
    errors: tuple[ErrorPlan, ...]
    modules: tuple[ModulePlan, ...]
    properties: tuple[PropertiesPlan, ...]
    channel_api: tuple[ApiMethod, ...]
    connection_api: tuple[ApiMethod, ...]
    property_structs: tuple[str, ...] = field(default=())
    property_uses: tuple[str, ...] = field(default=())
    # The runtime hooks the channel API uses, in HOOK_KINDS order.
    channel_hooks: tuple[HookPlan, ...] = field(default=())

    @property
    def methods(self) -> tuple[MethodPlan, ...]:
        return tuple(m for mod in self.modules for m in mod.methods)


# --- the whole spec -----------------------------------------------------------------


def _error_plans(constants: tuple[Constant, ...]) -> tuple[ErrorPlan, ...]:
    plans = []
    for const in constants:
        if not const.error_class:
            continue
        base = (
            "ChannelClosed" if const.error_class == "soft-error" else "ConnectionClosed"
        )
        text = docs.text_of(const.docs)
        lines = [f"{const.value} {const.name} ({const.error_class}).", ""]
        lines += docs.fill(text)
        plans.append(
            ErrorPlan(
                class_name=naming.error_name(const.name),
                base=base,
                code=const.value,
                constant=naming.constant_name(const.name),
                docstring=docs.escape("\n".join(lines).strip()),
            )
        )
    return tuple(plans)


def provenance(spec: Spec) -> str:
    """Which spec files the output comes from, and how to remake it."""
    files = " and ".join(f"{f.name} (sha256 {f.sha256})" for f in spec.files)
    return f"Generated by codegen from {files}. Do not edit: run `make generate`."


def header(spec: Spec) -> str:
    """The comment that opens every generated module: one line that says
    how to remake it, then one line per spec file (so no line passes 100
    characters)."""
    lines = ["# Generated by codegen. Do not edit: run `make generate`. From:"]
    lines += [f"#   {f.name} sha256 {f.sha256}" for f in spec.files]
    return "\n".join(lines)


def build(spec: Spec, hooks: Mapping[str, str] = HOOKS) -> SpecPlan:
    """Plan everything the templates render for ``spec``; ``hooks`` says
    which methods hand over to which runtime hook (see HOOKS).

    Raises:
        SpecError: ``spec`` cannot be rendered; a HookError (a ValueError
            too) when its methods and ``hooks`` do not fit.
    """
    errors = _error_plans(spec.constants)
    error_names = {
        next(c.name for c in spec.constants if c.value == e.code): e.class_name
        for e in errors
    }
    modules = []
    by_name: dict[str, MethodPlan] = {}
    for cls in spec.classes:
        structs: set[str] = set()
        uses: set[str] = set()
        plans = []
        for method in cls.methods:
            wire = plan_fields(cls, method, spec)
            encode, decode = method_codec(wire, structs, uses)
            uses |= field_uses(wire)
            class_name = naming.class_name(cls.name, method.name)
            properties_class = (
                naming.properties_class_name(cls.name)
                if method.content and cls.properties
                else ""
            )
            frames = (
                content_frames_lines(
                    cls, method, class_name, properties_class, wire, structs, spec, uses
                )
                if properties_class and method.client_sent
                else ()
            )
            mp = MethodPlan(
                amqp_class=cls,
                method=method,
                class_name=class_name,
                name=f"{cls.name}.{method.name}",
                class_id=cls.index,
                method_id=method.index,
                fields=tuple(f for f in wire if not f.reserved),
                wire=wire,
                responses=tuple(
                    naming.class_name(cls.name, r) for r in method.responses
                ),
                docstring=method_docstring(cls, method, wire, error_names),
                init_lines=init_lines(wire),
                encode_lines=encode,
                decode_lines=decode,
                structs=(),
                signature=signature(wire),
                frames_lines=frames,
                properties_class=properties_class,
                c_kinds=c_kinds(wire)[0],
                c_names=c_kinds(wire)[1],
            )
            plans.append(mp)
            by_name[mp.name] = mp
        modules.append(
            ModulePlan(
                amqp_class=cls,
                module=naming.python_name(cls.name),
                methods=tuple(plans),
                structs=tuple(sorted(structs)),
                uses=tuple(sorted(uses | ({"struct"} if structs else set()))),
            )
        )
    properties = []
    prop_structs: set[str] = set()
    prop_uses: set[str] = set()
    for cls in spec.classes:
        if not cls.properties:
            continue
        fields = plan_properties(cls)
        encode, decode = properties_codec(fields, prop_structs, prop_uses)
        prop_uses |= field_uses(fields)
        if len(fields) <= 15:
            prop_uses.update(("c_decode_properties", "c_encode_properties", "c_layout"))
        kinds, names = (
            c_kinds(fields, properties=True) if len(fields) <= 15 else ("", ())
        )
        properties.append(
            PropertiesPlan(
                amqp_class=cls,
                class_name=naming.properties_class_name(cls.name),
                fields=fields,
                docstring=properties_docstring(cls, fields),
                init_lines=init_lines(fields, optional=True),
                encode_lines=encode,
                decode_lines=decode,
                structs=(),
                signature=tuple(
                    ["*"]
                    + [
                        f"{f.name}: {PARAM_ANNOTATIONS.get(f.type, f.annotation)} | None = None"
                        for f in fields
                    ]
                ),
                c_kinds=kinds,
                c_names=names,
            )
        )
    channel_api = []
    connection_api = []
    for mod in modules:
        for mp in mod.methods:
            if not mp.method.client_sent or runtime_owned(mp.amqp_class, mp.method):
                continue
            api = plan_api(mp, error_names, by_name, hooks)
            if mp.amqp_class.name in CONNECTION_CLASSES:
                connection_api.append(api)
            else:
                channel_api.append(api)
    hooked: dict[str, ApiMethod] = {}
    for api in channel_api:
        if not api.hook:
            continue
        other = hooked.setdefault(api.hook, api)
        if other is not api:
            raise HookError(
                f"{api.method.method.source}: {api.method.name} and "
                f"{other.method.name} both hand over to {api.hook} "
                "(codegen.api.HOOKS); a hook drives one method"
            )
    unused = sorted(set(hooks) - {api.method.name for api in hooked.values()})
    if unused:
        # A misspelt entry would leave its method on _rpc, silently.
        raise HookError(
            f"codegen.api.HOOKS names {', '.join(unused)}: no client-sent "
            "method of the spec that the API sends"
        )
    reply_codes = tuple(
        (naming.constant_name(c.name), c.value, c.error_class)
        for c in spec.constants
        if c.error_class or c.name.startswith("reply-")
    )
    constants = tuple(
        (naming.constant_name(c.name), c.value, c.error_class) for c in spec.constants
    )
    return SpecPlan(
        spec=spec,
        header=header(spec),
        constants=constants,
        reply_codes=reply_codes,
        class_ids=tuple((naming.constant_name(c.name), c.index) for c in spec.classes),
        errors=errors,
        modules=tuple(modules),
        properties=tuple(properties),
        channel_api=tuple(channel_api),
        connection_api=tuple(connection_api),
        property_structs=tuple(sorted(prop_structs)),
        property_uses=tuple(
            sorted(prop_uses | ({"struct"} if prop_structs else set()))
        ),
        channel_hooks=tuple(plan_hook(hooked[h]) for h in HOOK_KINDS if h in hooked),
    )
