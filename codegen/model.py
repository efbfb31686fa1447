"""The typed model of an AMQP specification.

Frozen dataclasses only; every element remembers the file and line it came
from so that errors (unknown domains, overlay conflicts) can name it. The
loader builds these from XML; nothing here knows about lxml or jinja2.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The primitive AMQP types of the 0-9-1 XML and their wire sizes in octets
#: (``None`` for variable-size types; bits are folded into octets).
PRIMITIVE_TYPES: dict[str, int | None] = {
    "bit": None,
    "octet": 1,
    "short": 2,
    "long": 4,
    "longlong": 8,
    "timestamp": 8,
    "shortstr": None,
    "longstr": None,
    "table": None,
}


class SpecError(Exception):
    """A problem in a spec or overlay file; the message names file and line."""


@dataclass(frozen=True, slots=True)
class Source:
    """Where an element was defined."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class Doc:
    """One ``<doc>`` element: plain text (``kind=""``), grammar or scenario."""

    text: str
    kind: str = ""


@dataclass(frozen=True, slots=True)
class Assert:
    """One ``<assert>``: a constraint such as notnull, length, regexp, le."""

    check: str
    value: str = ""
    method: str = ""
    field: str = ""


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``<rule>``: a MUST/SHOULD of the spec, with its on-failure code."""

    name: str
    on_failure: str
    docs: tuple[Doc, ...]


@dataclass(frozen=True, slots=True)
class Constant:
    name: str
    value: int
    error_class: str  # "", "soft-error" or "hard-error"
    docs: tuple[Doc, ...]
    source: Source


@dataclass(frozen=True, slots=True)
class Domain:
    name: str
    type: str  # as written: a primitive type or another domain
    label: str
    docs: tuple[Doc, ...]
    asserts: tuple[Assert, ...]
    rules: tuple[Rule, ...]
    source: Source


@dataclass(frozen=True, slots=True)
class Field:
    """A method argument or a content property.

    ``domain`` is the name written in the XML (``type=`` for reserved
    fields); ``type`` is the primitive type it resolves to, and ``asserts``
    holds the domain's asserts followed by the field's own.
    """

    name: str
    domain: str
    type: str
    label: str
    reserved: bool
    docs: tuple[Doc, ...]
    asserts: tuple[Assert, ...]
    rules: tuple[Rule, ...]
    source: Source
    default: str | None = None  # an explicit default="" attribute, overlays only

    @property
    def required(self) -> bool:
        """A field with a notnull assert has no default in the Python API."""
        return any(a.check == "notnull" for a in self.asserts)


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    index: int
    synchronous: bool
    content: bool
    deprecated: bool
    label: str
    chassis: tuple[str, ...]  # who implements it: "server" means client-sent
    responses: tuple[str, ...]
    fields: tuple[Field, ...]
    docs: tuple[Doc, ...]
    rules: tuple[Rule, ...]
    source: Source

    @property
    def client_sent(self) -> bool:
        """The server implements it, so the client sends it."""
        return "server" in self.chassis

    @property
    def server_sent(self) -> bool:
        return "client" in self.chassis


@dataclass(frozen=True, slots=True)
class AMQPClass:
    name: str
    index: int
    handler: str
    label: str
    chassis: tuple[str, ...]
    methods: tuple[Method, ...]
    properties: tuple[Field, ...]  # class-level <field>s: content properties
    docs: tuple[Doc, ...]
    rules: tuple[Rule, ...]
    source: Source

    def method(self, name: str) -> Method:
        for method in self.methods:
            if method.name == name:
                return method
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A spec input file: its base name and sha256, for the output headers."""

    name: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Spec:
    major: int
    minor: int
    revision: int
    port: int
    constants: tuple[Constant, ...]
    domains: tuple[Domain, ...]
    classes: tuple[AMQPClass, ...]
    files: tuple[SourceFile, ...] = field(default=())

    def domain(self, name: str) -> Domain:
        for domain in self.domains:
            if domain.name == name:
                return domain
        raise KeyError(name)

    def amqp_class(self, name: str) -> AMQPClass:
        for cls in self.classes:
            if cls.name == name:
                return cls
        raise KeyError(name)
