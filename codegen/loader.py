"""Read AMQP spec XML (the official file or an overlay) into the model.

lxml stays inside this module: what leaves it are the frozen dataclasses of
``codegen.model``. Every error names the file and line it is about. Unknown
elements and attributes are errors, not silently skipped, so a typo in an
overlay cannot produce a quietly wrong client.
"""

from __future__ import annotations

import hashlib
import textwrap
from dataclasses import replace
from pathlib import Path

from lxml import etree

from codegen.model import (
    PRIMITIVE_TYPES,
    AMQPClass,
    Assert,
    Constant,
    Doc,
    Domain,
    Field,
    Method,
    Rule,
    Source,
    SourceFile,
    Spec,
    SpecError,
)

_ATTRIBUTES: dict[str, frozenset[str]] = {
    "amqp": frozenset({"major", "minor", "revision", "port", "comment"}),
    "constant": frozenset({"name", "value", "class"}),
    "domain": frozenset({"name", "type", "label"}),
    "class": frozenset({"name", "handler", "index", "label"}),
    "method": frozenset(
        {"name", "synchronous", "index", "label", "content", "deprecated"}
    ),
    "field": frozenset({"name", "domain", "type", "label", "reserved", "default"}),
    "chassis": frozenset({"name", "implement"}),
    "response": frozenset({"name"}),
    "assert": frozenset({"check", "value", "method", "field"}),
    "rule": frozenset({"name", "on-failure"}),
    "doc": frozenset({"type"}),
}

_CHILDREN: dict[str, frozenset[str]] = {
    "amqp": frozenset({"constant", "domain", "class"}),
    "constant": frozenset({"doc"}),
    "domain": frozenset({"doc", "assert", "rule"}),
    "class": frozenset({"doc", "chassis", "rule", "field", "method"}),
    "method": frozenset({"doc", "chassis", "response", "rule", "field"}),
    "field": frozenset({"doc", "assert", "rule"}),
    "rule": frozenset({"doc"}),
    "chassis": frozenset(),
    "response": frozenset(),
    "assert": frozenset(),
    "doc": frozenset(),
}


class _Reader:
    """Walks one parsed file; knows its name for error messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name

    def source(self, element: etree._Element) -> Source:
        line = element.sourceline
        return Source(self.name, line if isinstance(line, int) else 0)

    def fail(self, element: etree._Element, message: str) -> SpecError:
        return SpecError(f"{self.source(element)}: {message}")

    def check(self, element: etree._Element) -> None:
        tag = element.tag
        if tag not in _ATTRIBUTES:
            raise self.fail(element, f"unknown element <{tag}>")
        for attr in element.attrib:
            if attr not in _ATTRIBUTES[tag]:
                raise self.fail(element, f"unknown attribute {attr!r} on <{tag}>")
        for child in element:
            if not isinstance(child.tag, str):
                continue  # comments and processing instructions
            if child.tag not in _CHILDREN[tag]:
                raise self.fail(child, f"<{child.tag}> is not allowed inside <{tag}>")

    def attr(
        self, element: etree._Element, name: str, default: str | None = None
    ) -> str:
        value = element.get(name)
        if value is None:
            if default is None:
                raise self.fail(element, f"<{element.tag}> needs a {name!r} attribute")
            return default
        return str(value)

    def int_attr(
        self, element: etree._Element, name: str, default: int | None = None
    ) -> int:
        raw = element.get(name)
        if raw is None:
            if default is None:
                raise self.fail(element, f"<{element.tag}> needs a {name!r} attribute")
            return default
        try:
            return int(raw)
        except ValueError:
            raise self.fail(element, f"{name}={raw!r} is not an integer") from None

    def flag(self, element: etree._Element, name: str) -> bool:
        raw = element.get(name, "0")
        if raw not in ("0", "1"):
            raise self.fail(element, f"{name}={raw!r} must be 0 or 1")
        return bool(raw == "1")

    def children(self, element: etree._Element, tag: str) -> list[etree._Element]:
        found = []
        for child in element:
            if isinstance(child.tag, str) and child.tag == tag:
                self.check(child)
                found.append(child)
        return found

    def docs(self, element: etree._Element) -> tuple[Doc, ...]:
        docs = []
        for node in self.children(element, "doc"):
            kind = node.get("type", "")
            if kind not in ("", "grammar", "scenario"):
                raise self.fail(node, f"unknown doc type {kind!r}")
            docs.append(Doc(_clean_text(node.text or ""), kind))
        return tuple(docs)

    def asserts(self, element: etree._Element) -> tuple[Assert, ...]:
        return tuple(
            Assert(
                self.attr(node, "check"),
                node.get("value", ""),
                node.get("method", ""),
                node.get("field", ""),
            )
            for node in self.children(element, "assert")
        )

    def rules(self, element: etree._Element) -> tuple[Rule, ...]:
        return tuple(
            Rule(self.attr(node, "name"), node.get("on-failure", ""), self.docs(node))
            for node in self.children(element, "rule")
        )

    def field(self, element: etree._Element) -> Field:
        domain = element.get("domain")
        type_ = element.get("type")
        if (domain is None) == (type_ is None):
            raise self.fail(element, "<field> needs exactly one of 'domain' and 'type'")
        return Field(
            name=self.attr(element, "name"),
            domain=str(domain if domain is not None else type_),
            type="",
            label=element.get("label", ""),
            reserved=self.flag(element, "reserved"),
            docs=self.docs(element),
            asserts=self.asserts(element),
            rules=self.rules(element),
            source=self.source(element),
            default=element.get("default"),
        )

    def method(self, element: etree._Element) -> Method:
        return Method(
            name=self.attr(element, "name"),
            index=self.int_attr(element, "index", -1),
            synchronous=self.flag(element, "synchronous"),
            content=self.flag(element, "content"),
            deprecated=self.flag(element, "deprecated"),
            label=element.get("label", ""),
            chassis=tuple(
                self.attr(node, "name") for node in self.children(element, "chassis")
            ),
            responses=tuple(
                self.attr(node, "name") for node in self.children(element, "response")
            ),
            fields=tuple(self.field(node) for node in self.children(element, "field")),
            docs=self.docs(element),
            rules=self.rules(element),
            source=self.source(element),
        )

    def amqp_class(self, element: etree._Element) -> AMQPClass:
        return AMQPClass(
            name=self.attr(element, "name"),
            index=self.int_attr(element, "index", -1),
            handler=element.get("handler", ""),
            label=element.get("label", ""),
            chassis=tuple(
                self.attr(node, "name") for node in self.children(element, "chassis")
            ),
            methods=tuple(
                self.method(node) for node in self.children(element, "method")
            ),
            properties=tuple(
                self.field(node) for node in self.children(element, "field")
            ),
            docs=self.docs(element),
            rules=self.rules(element),
            source=self.source(element),
        )

    def constant(self, element: etree._Element) -> Constant:
        error_class = element.get("class", "")
        if error_class not in ("", "soft-error", "hard-error"):
            raise self.fail(element, f"unknown constant class {error_class!r}")
        return Constant(
            name=self.attr(element, "name"),
            value=self.int_attr(element, "value"),
            error_class=error_class,
            docs=self.docs(element),
            source=self.source(element),
        )

    def domain(self, element: etree._Element) -> Domain:
        return Domain(
            name=self.attr(element, "name"),
            type=self.attr(element, "type"),
            label=element.get("label", ""),
            docs=self.docs(element),
            asserts=self.asserts(element),
            rules=self.rules(element),
            source=self.source(element),
        )


def _clean_text(text: str) -> str:
    """Dedent a <doc> body and drop leading/trailing blank lines."""
    lines = textwrap.dedent(text.expandtabs(8)).strip("\n").splitlines()
    return "\n".join(line.rstrip() for line in lines).strip()


def parse(path: Path) -> Spec:
    """Parse one XML file (base spec or overlay) into an unresolved Spec.

    Field types are left empty; :func:`resolve` fills them in after overlays
    have been merged.

    Raises:
        SpecError: malformed XML, unknown elements or attributes, bad values.
    """
    data = path.read_bytes()
    parser = etree.XMLParser(
        remove_comments=True, resolve_entities=False, no_network=True
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or 0
        raise SpecError(f"{path.name}:{line}: {exc.msg}") from None
    reader = _Reader(path)
    if root.tag != "amqp":
        raise reader.fail(root, f"the root element is <{root.tag}>, expected <amqp>")
    reader.check(root)
    return Spec(
        major=reader.int_attr(root, "major", -1),
        minor=reader.int_attr(root, "minor", -1),
        revision=reader.int_attr(root, "revision", -1),
        port=reader.int_attr(root, "port", -1),
        constants=tuple(reader.constant(e) for e in reader.children(root, "constant")),
        domains=tuple(reader.domain(e) for e in reader.children(root, "domain")),
        classes=tuple(reader.amqp_class(e) for e in reader.children(root, "class")),
        files=(SourceFile(path.name, hashlib.sha256(data).hexdigest()),),
    )


def _resolve_domain(
    spec: Spec, name: str, where: Source
) -> tuple[str, tuple[Assert, ...]]:
    """Follow a domain chain to its primitive type, collecting asserts."""
    if name in PRIMITIVE_TYPES:
        return name, ()
    domains = {d.name: d for d in spec.domains}
    seen: list[str] = []
    asserts: list[Assert] = []
    current = name
    while current not in PRIMITIVE_TYPES:
        domain = domains.get(current)
        if domain is None:
            raise SpecError(f"{where}: unknown domain {current!r}")
        if current in seen:
            chain = " -> ".join([*seen, current])
            raise SpecError(f"{domain.source}: domain cycle {chain}")
        seen.append(current)
        asserts.extend(domain.asserts)
        where = domain.source
        current = domain.type
    return current, tuple(asserts)


def _resolve_field(spec: Spec, field: Field) -> Field:
    type_, asserts = _resolve_domain(spec, field.domain, field.source)
    return replace(field, type=type_, asserts=asserts + field.asserts)


def resolve(spec: Spec) -> Spec:
    """Resolve every field's domain to a primitive type and check references.

    Raises:
        SpecError: an unknown domain or type, a response naming no method of
            its class, a missing index, a duplicate name or index.
    """
    for domain in spec.domains:
        _resolve_domain(spec, domain.name, domain.source)
    classes = []
    for cls in spec.classes:
        if cls.index < 0:
            raise SpecError(f"{cls.source}: class {cls.name!r} has no index")
        names = {m.name for m in cls.methods}
        methods = []
        for method in cls.methods:
            if method.index < 0:
                raise SpecError(
                    f"{method.source}: method {cls.name}.{method.name} has no index"
                )
            for response in method.responses:
                if response not in names:
                    raise SpecError(
                        f"{method.source}: {cls.name}.{method.name} names response "
                        f"{response!r}, which class {cls.name!r} does not define"
                    )
            seen: set[str] = set()
            for fld in method.fields:
                if fld.name in seen:
                    raise SpecError(f"{fld.source}: duplicate field {fld.name!r}")
                seen.add(fld.name)
            methods.append(
                replace(
                    method, fields=tuple(_resolve_field(spec, f) for f in method.fields)
                )
            )
        classes.append(
            replace(
                cls,
                methods=tuple(methods),
                properties=tuple(_resolve_field(spec, f) for f in cls.properties),
            )
        )
    return replace(spec, classes=tuple(classes))


def load(base: Path, overlays: tuple[Path, ...] = ()) -> Spec:
    """Parse the base spec, merge overlays over it in order, resolve."""
    from codegen.overlay import merge

    spec = parse(base)
    for path in overlays:
        spec = merge(spec, parse(path))
    return resolve(spec)
