"""Plan docs/reference.md from the same plan as generated/. Pure: no I/O, no jinja2.

Everything the template ``reference.md.j2`` places is computed here: Python
names, types, defaults, replies and API methods come from
:mod:`codegen.plan`, so the reference cannot disagree with the generated
code; prose is escaped Markdown (:mod:`codegen.docs`); every heading's anchor
is the one GitHub gives it, handed out in document order, so the links of
the table of contents work where the file is read.

The template writes the headings in this order: title, contents, one section
per class (its methods under it), content properties, constants, reply
codes, domains. :func:`build` must register them in the same order (the
anchor of a repeated heading depends on it).
"""

from __future__ import annotations

from dataclasses import dataclass

from codegen import api as api_plan
from codegen import docs, naming
from codegen import fields as fields_plan
from codegen import plan as planning
from codegen import propcodec as propcodec_plan
from codegen.model import Assert, Constant, Doc, Rule, Spec

#: Where the reference lives, relative to the checkout.
PATH = "docs/reference.md"

_SENT_BY = {
    (True, True): "both",
    (True, False): "client",
    (False, True): "server",
    (False, False): "neither",
}


@dataclass(frozen=True)
class Heading:
    """A heading: its Markdown text and the anchor GitHub gives it."""

    text: str
    anchor: str

    @property
    def link(self) -> str:
        return f"[{self.text}](#{self.anchor})"


@dataclass(frozen=True)
class RuleRef:
    name: str  # a code span
    failure: str  # Markdown: the reply code and exception, or ""
    text: tuple[str, ...]
    scenarios: tuple[str, ...]


@dataclass(frozen=True)
class FieldRef:
    """A method field; every string is a ready Markdown table cell."""

    python_name: str
    spec_name: str
    type: str
    python_type: str
    domain: str
    default: str
    reserved: bool
    label: str
    text: tuple[str, ...]
    constraints: str
    rules: tuple[RuleRef, ...]

    @property
    def described(self) -> bool:
        return bool(self.label or self.text or self.constraints or self.rules)


@dataclass(frozen=True)
class MethodRef:
    short: str  # the method name alone, as a code span
    heading: Heading
    class_id: int
    method_id: int
    sent_by: str
    synchronous: bool
    content: bool
    deprecated: bool
    replies: tuple[str, ...]  # links
    answers: tuple[str, ...]  # links to the methods this one replies to
    python_class: str
    api: str
    label: str
    text: tuple[str, ...]
    rules: tuple[RuleRef, ...]
    fields: tuple[FieldRef, ...]


@dataclass(frozen=True)
class ClassRef:
    index: int
    heading: Heading
    label: str
    text: tuple[str, ...]
    grammar: tuple[str, ...]  # verbatim blocks
    rules: tuple[RuleRef, ...]
    methods: tuple[MethodRef, ...]
    properties: str  # a link to its content properties, or ""


@dataclass(frozen=True)
class PropertyRef:
    flag: str
    python_name: str
    spec_name: str
    type: str
    python_type: str
    domain: str
    text: str  # one table cell: the label and the doc text


@dataclass(frozen=True)
class PropertiesRef:
    amqp_class: str  # a link to the class section
    heading: Heading
    fields: tuple[PropertyRef, ...]


@dataclass(frozen=True)
class ConstantRef:
    name: str
    python_name: str
    value: int
    error_class: str
    text: str  # one table cell


@dataclass(frozen=True)
class ReplyCodeRef:
    code: int
    name: str
    closes: str
    exception: str


@dataclass(frozen=True)
class DomainRef:
    name: str
    type: str
    label: str
    constraints: str
    text: str  # one table cell
    rules: tuple[RuleRef, ...]


@dataclass(frozen=True)
class Reference:
    provenance: str
    title: Heading
    version: str
    port: int
    files: tuple[str, ...]
    method_count: int
    contents: Heading
    classes: tuple[ClassRef, ...]
    properties_heading: Heading
    properties: tuple[PropertiesRef, ...]
    constants_heading: Heading
    constants: tuple[ConstantRef, ...]
    reply_codes_heading: Heading
    reply_codes: tuple[ReplyCodeRef, ...]
    domains_heading: Heading
    domains: tuple[DomainRef, ...]


# --- pieces -------------------------------------------------------------------------


def _cell(text: str) -> str:
    """Doc text as one table cell: paragraphs joined by a blank line."""
    return "<br><br>".join(docs.md_paragraphs(text))


def _constraints(asserts: tuple[Assert, ...]) -> str:
    parts = []
    for a in asserts:
        part = docs.md_code(a.check)
        if a.value:
            part += " " + docs.md_code(a.value)
        target = ".".join(p for p in (a.method, a.field) if p)
        if target:
            part += f" (of {docs.md_code(target)})"
        if part not in parts:
            parts.append(part)
    return ", ".join(parts)


@dataclass(frozen=True)
class _Names:
    """What the parts of the reference look up: reply codes, exception
    names, API methods and the anchors of the method headings."""

    codes: dict[str, int]
    errors: dict[str, str]
    apis: dict[str, api_plan.ApiMethod]
    methods: dict[str, Heading]


def _rule(rule: Rule, names: _Names, owner: str = "") -> RuleRef:
    failure = ""
    if rule.on_failure:
        failure = docs.md_code(rule.on_failure)
        if rule.on_failure in names.codes:
            failure = f"{names.codes[rule.on_failure]} {failure}"
        if rule.on_failure in names.errors:
            failure += f", raised as {docs.md_code(names.errors[rule.on_failure])}"
    return RuleRef(
        name=docs.md_code(owner + rule.name),
        failure=failure,
        text=tuple(docs.md_paragraphs(docs.text_of(rule.docs))),
        scenarios=tuple(docs.md_paragraphs(docs.text_of(rule.docs, "scenario"))),
    )


def _default(f: fields_plan.PlanField) -> str:
    if f.required:
        return "*required*"
    if f.type == "table":
        return "*empty*"
    return docs.md_code(fields_plan.py_repr(f.default))


def _text(items: tuple[Doc, ...]) -> tuple[str, ...]:
    return tuple(docs.md_paragraphs(docs.text_of(items)))


def _label(label: str) -> str:
    return docs.md_escape(docs.sentence(label))


def _api(mp: planning.MethodPlan, names: _Names) -> str:
    api = names.apis.get(mp.name)
    if api is not None:
        owner = (
            "ConnectionMethods"
            if mp.amqp_class.name in api_plan.CONNECTION_CLASSES
            else "ChannelMethods"
        )
        return (
            f"{docs.md_code(api.name + '()')} on {docs.md_code(owner)} and "
            f"{docs.md_code('Async' + owner)}"
        )
    if mp.method.client_sent:
        return "none: the runtime sends it itself"
    return "none: the client receives it"


def _field(f: fields_plan.PlanField, names: _Names) -> FieldRef:
    label, text = f.label, f.doc
    if f.reserved:
        # No Python side: no Python type, and only the field's own text, not
        # its domain's ("16-bit integer").
        label, text = f.spec.label, docs.text_of(f.spec.docs)
    return FieldRef(
        python_name="*reserved*" if f.reserved else docs.md_code(f.name),
        spec_name=docs.md_code(f.spec_name),
        type=docs.md_code(f.type),
        python_type="—" if f.reserved else docs.md_code(f.annotation),
        domain=docs.md_code(f.spec.domain),
        default=_default(f),
        reserved=f.reserved,
        label=_label(label),
        text=tuple(docs.md_paragraphs(text)),
        constraints=_constraints(f.spec.asserts),
        rules=tuple(_rule(r, names) for r in f.spec.rules),
    )


def _method(mp: planning.MethodPlan, names: _Names) -> MethodRef:
    cls, method = mp.amqp_class, mp.method
    return MethodRef(
        short=docs.md_code(method.name),
        heading=names.methods[mp.name],
        class_id=mp.class_id,
        method_id=mp.method_id,
        sent_by=_SENT_BY[(method.client_sent, method.server_sent)],
        synchronous=method.synchronous,
        content=method.content,
        deprecated=method.deprecated,
        replies=tuple(names.methods[f"{cls.name}.{r}"].link for r in method.responses),
        answers=tuple(
            names.methods[f"{cls.name}.{other.name}"].link
            for other in cls.methods
            if method.name in other.responses
        ),
        python_class=docs.md_code(mp.class_name),
        api=_api(mp, names),
        label=_label(method.label),
        text=_text(method.docs),
        rules=tuple(_rule(r, names) for r in method.rules),
        fields=tuple(_field(f, names) for f in mp.wire),
    )


def _properties(
    p: planning.PropertiesPlan, heading: Heading, class_anchor: str
) -> PropertiesRef:
    words, _ = propcodec_plan.flag_layout(len(p.fields))
    rows = []
    for k, f in enumerate(p.fields):
        # Property k sits in flag word k // 15 at bit 15 - k % 15 (§4.2.6.1).
        word, bit = divmod(k, 15)
        rows.append(
            PropertyRef(
                flag=str(15 - bit) if words == 1 else f"{word + 1}:{15 - bit}",
                python_name=docs.md_code(f.name),
                spec_name=docs.md_code(f.spec_name),
                type=docs.md_code(f.type),
                python_type=docs.md_code(f"{f.annotation} | None"),
                domain=docs.md_code(f.spec.domain),
                text="<br><br>".join(x for x in (_label(f.label), _cell(f.doc)) if x),
            )
        )
    return PropertiesRef(
        amqp_class=f"[class {docs.md_code(p.amqp_class.name)}](#{class_anchor})",
        heading=heading,
        fields=tuple(rows),
    )


def _reply_code(c: Constant) -> ReplyCodeRef:
    exception = closes = ""
    if c.error_class == "soft-error":
        closes, base = "the channel", "ChannelClosed"
    elif c.error_class == "hard-error":
        closes, base = "the connection", "ConnectionClosed"
    if closes:
        exception = f"{docs.md_code(naming.error_name(c.name))} ({docs.md_code(base)})"
    return ReplyCodeRef(
        code=c.value, name=docs.md_code(c.name), closes=closes, exception=exception
    )


# --- the whole reference --------------------------------------------------------------


def spec_title(spec: Spec) -> str:
    """The reference's title for ``spec``."""
    return f"AMQP {spec.major}-{spec.minor}-{spec.revision} reference"


def build(plan: planning.SpecPlan) -> Reference:
    """Plan every part of docs/reference.md for ``plan``."""
    spec = plan.spec
    slugs = docs.Slugs()

    def heading(text: str, plain: str | None = None) -> Heading:
        """A heading whose anchor is made from ``plain`` (the text itself
        when it has no markup)."""
        return Heading(text, slugs(text if plain is None else plain))

    # Every heading, in document order (see the module docstring).
    title = heading(spec_title(spec))
    contents = heading("Contents")
    class_headings: dict[str, Heading] = {}
    method_headings: dict[str, Heading] = {}
    for module in plan.modules:
        name = module.amqp_class.name
        class_headings[name] = heading(f"Class {docs.md_code(name)}", f"Class {name}")
        for mp in module.methods:
            method_headings[mp.name] = heading(docs.md_code(mp.name), mp.name)
    properties_heading = heading("Content properties")
    property_headings = {
        p.amqp_class.name: heading(docs.md_code(p.class_name), p.class_name)
        for p in plan.properties
    }
    constants_heading = heading("Constants")
    reply_codes_heading = heading("Reply codes")
    domains_heading = heading("Domains")

    names = _Names(
        codes={c.name: c.value for c in spec.constants},
        errors={
            c.name: naming.error_name(c.name) for c in spec.constants if c.error_class
        },
        apis={a.method.name: a for a in (*plan.channel_api, *plan.connection_api)},
        methods=method_headings,
    )
    classes = []
    for module in plan.modules:
        cls = module.amqp_class
        properties = property_headings.get(cls.name)
        classes.append(
            ClassRef(
                index=cls.index,
                heading=class_headings[cls.name],
                label=_label(cls.label),
                text=_text(cls.docs),
                grammar=tuple(d.text for d in cls.docs if d.kind == "grammar"),
                rules=tuple(_rule(r, names) for r in cls.rules),
                methods=tuple(_method(mp, names) for mp in module.methods),
                properties=properties.link if properties else "",
            )
        )
    # The constants generated/ puts in its ReplyCode enum.
    reply_code_names = {name for name, _, _ in plan.reply_codes}
    return Reference(
        provenance=planning.provenance(spec),
        title=title,
        version=f"{spec.major}-{spec.minor}-{spec.revision}",
        port=spec.port,
        files=tuple(
            f"{docs.md_code(f.name)} (sha256 {docs.md_code(f.sha256)})"
            for f in spec.files
        ),
        method_count=len(plan.methods),
        contents=contents,
        classes=tuple(classes),
        properties_heading=properties_heading,
        properties=tuple(
            _properties(
                p,
                property_headings[p.amqp_class.name],
                class_headings[p.amqp_class.name].anchor,
            )
            for p in plan.properties
        ),
        constants_heading=constants_heading,
        constants=tuple(
            ConstantRef(
                name=docs.md_code(c.name),
                python_name=docs.md_code(naming.constant_name(c.name)),
                value=c.value,
                error_class=c.error_class,
                text=_cell(docs.text_of(c.docs)),
            )
            for c in spec.constants
        ),
        reply_codes_heading=reply_codes_heading,
        reply_codes=tuple(
            _reply_code(c)
            for c in spec.constants
            if naming.constant_name(c.name) in reply_code_names
        ),
        domains_heading=domains_heading,
        domains=tuple(
            DomainRef(
                name=docs.md_code(d.name),
                type=docs.md_code(d.type),
                label=_label(d.label),
                constraints=_constraints(d.asserts),
                text=_cell(docs.text_of(d.docs)),
                rules=tuple(_rule(r, names, f"{d.name}.") for r in d.rules),
            )
            for d in spec.domains
        ),
    )
