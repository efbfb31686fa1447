"""Hypothesis strategies for the generated protocol classes.

Everything here is derived from the ``FIELDS`` descriptors of the generated
method classes and of ``BasicProperties``: a field's AMQP type says which
values are valid, its default says whether a constructor may leave it out,
and its domain says which fields pamqp restricts (exchange and queue names).
A method added to an overlay gets strategies with no change here.

A :class:`Profile` narrows the values to what a peer implementation can
encode the same way, so the same strategies serve the round-trip tests
(:data:`ROUND_TRIP`, every value our codec accepts) and the interop tests
against pamqp and pika.

Usage::

    from tests.property.strategies import methods, basic_properties

    @given(methods(spec.QueueDeclare))
    def test_something(method): ...
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import string
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from amqp_client import spec
from amqp_client._spec_base import REQUIRED, Field, Method

__all__ = [
    "ALL_METHODS",
    "PAMQP_DECODE",
    "PAMQP_ENCODE",
    "PIKA",
    "ROUND_TRIP",
    "TABLE_KINDS",
    "Profile",
    "any_method",
    "basic_properties",
    "field_table_values",
    "field_tables",
    "field_values",
    "method_kwargs",
    "methods",
    "properties_kwargs",
    "property_values",
    "shortstrs",
    "sort_table_keys",
    "timestamps",
    "truncate_utf8",
]

#: Every method class of the registry, in registry (id) order.
ALL_METHODS: tuple[type[Method], ...] = tuple(
    sorted(spec.METHODS.values(), key=lambda cls: cls.INDEX)
)

#: Characters that encode as UTF-8 (no lone surrogates).
_TEXT = st.characters(codec="utf-8")

#: Exchange and queue names every client accepts (AMQP 0-9-1 §1.2 domain
#: exchange-name / queue-name: letters, digits, hyphen, underscore, period,
#: colon; pamqp checks them with a regex and a 127-character limit).
NAME_CHARS = string.ascii_letters + string.digits + "-_.:"

_INT_BITS = {"octet": 8, "short": 16, "long": 32, "longlong": 64}

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
#: 9999-12-31T23:59:59Z, the last second a datetime holds.
_MAX_SECONDS = 253402300799

#: Kinds of field-table values (the value types of amqp_client.wire).
TABLE_KINDS = frozenset(
    {
        "str",  # S
        "bool",  # t
        "bytes",  # x
        "int",  # I / l (and b s u i from other clients)
        "float",  # d
        "float32",  # f as other clients send it: floats exact in 32 bits
        "decimal",  # D
        "datetime",  # T
        "none",  # V
        "list",  # A
        "dict",  # F
    }
)


@dataclasses.dataclass(frozen=True)
class Profile:
    """Which valid values a strategy draws.

    Attributes:
        name: for test ids and messages.
        table_kinds: the kinds of field-table values (see TABLE_KINDS).
        sorted_keys: build every table (nested ones too) with its keys in
            sorted order, the order pamqp writes them in.
        pamqp_names: exchange and queue names (and the virtual host) limited
            to what pamqp validates: at most 127 characters, names from
            NAME_CHARS.
        text_longstr: longstr values are UTF-8 text (pamqp takes str).
        pamqp_properties: property strings are never empty (pamqp leaves an
            empty one out), delivery_mode is 1 or 2 and cluster_id is
            absent (pamqp's constructor checks both).
        signed_longlong: longlong fields stay below 2**63 (pamqp writes them
            as signed int64; the spec's longlong is unsigned).
        int_timestamps: timestamp properties may also be ints of seconds
            past year 9999 (which decode back to ints); pamqp takes
            datetimes only.
    """

    name: str
    table_kinds: frozenset[str] = TABLE_KINDS - {"float32"}
    sorted_keys: bool = False
    pamqp_names: bool = False
    text_longstr: bool = False
    pamqp_properties: bool = False
    signed_longlong: bool = False
    int_timestamps: bool = True

    def __post_init__(self) -> None:
        unknown = self.table_kinds - TABLE_KINDS
        if unknown:
            raise ValueError(f"unknown table kinds: {sorted(unknown)}")


#: Every value our codec encodes and decodes back to an equal value.
ROUND_TRIP = Profile("round-trip")

#: Values pamqp encodes byte for byte as we do: table values only of the
#: types both encode with the same tag (pamqp picks the smallest integer
#: tag and writes floats as float32), keys in pamqp's sorted order.
PAMQP_ENCODE = Profile(
    "pamqp-encode",
    table_kinds=frozenset(
        {"str", "bool", "bytes", "decimal", "datetime", "none", "list", "dict"}
    ),
    sorted_keys=True,
    pamqp_names=True,
    text_longstr=True,
    pamqp_properties=True,
    signed_longlong=True,
    int_timestamps=False,
)

#: Values pamqp can encode at all (our decoder must read them back).
PAMQP_DECODE = dataclasses.replace(
    PAMQP_ENCODE,
    name="pamqp-decode",
    table_kinds=TABLE_KINDS - {"float"},
    sorted_keys=False,
)

#: Values pika can encode (pika has no float in tables and writes every int
#: as I or l).
PIKA = Profile("pika", table_kinds=TABLE_KINDS - {"float", "float32"})


# --------------------------------------------------------------------------
# Primitive values


def truncate_utf8(text: str, limit: int = 255) -> str:
    """Cut ``text`` to at most ``limit`` UTF-8 bytes, on a character boundary."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


def shortstrs(
    *, max_chars: int = 255, alphabet: Any = _TEXT, min_size: int = 0
) -> st.SearchStrategy[str]:
    """Valid shortstr values: text of at most 255 UTF-8 bytes.

    Long multi-byte strings are cut on a character boundary, so strings of
    exactly 255 bytes and of 64 characters or more (the constructors' slow
    path) come up as well as short ones.
    """
    return (
        st.text(alphabet, min_size=min_size, max_size=max_chars)
        .map(truncate_utf8)
        .filter(lambda s: len(s) >= min_size)
    )


def timestamps(*, offsets: bool = True) -> st.SearchStrategy[datetime.datetime]:
    """Aware datetimes on a whole second between 1970 and 9999.

    With ``offsets``, some are in a fixed-offset zone other than UTC (the
    same instant decodes as an equal UTC datetime).
    """
    seconds = st.integers(0, _MAX_SECONDS)
    utc = seconds.map(lambda s: _EPOCH + datetime.timedelta(seconds=s))
    if not offsets:
        return utc
    zones = st.integers(-14 * 60, 14 * 60).map(
        lambda minutes: datetime.timezone(datetime.timedelta(minutes=minutes))
    )
    # A day away from both ends, so converting to the zone cannot overflow.
    shifted = st.builds(
        lambda s, tz: (_EPOCH + datetime.timedelta(seconds=s)).astimezone(tz),
        st.integers(86400, _MAX_SECONDS - 86400),
        zones,
    )
    return st.one_of(utc, shifted)


def _decimals() -> st.SearchStrategy[decimal.Decimal]:
    # unscaled int32 * 10**-scale, as the wire carries it (AMQP §4.2.5.5).
    return st.builds(
        lambda unscaled, scale: decimal.Decimal(unscaled).scaleb(-scale),
        st.integers(-(2**31), 2**31 - 1),
        st.integers(0, 255),
    )


_SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "str": st.text(_TEXT, max_size=24),
    "bool": st.booleans(),
    "bytes": st.binary(max_size=24),
    "int": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(allow_nan=False),
    "float32": st.floats(allow_nan=False, width=32),
    "decimal": _decimals(),
    "datetime": timestamps(offsets=False),
    "none": st.none(),
}


def sort_table_keys(value: Any) -> Any:
    """Rebuild every table in ``value`` (nested ones too) in sorted key order."""
    if isinstance(value, Mapping):
        return {key: sort_table_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sort_table_keys(item) for item in value]
    return value


def _table_keys() -> st.SearchStrategy[str]:
    # pamqp cuts keys over 128 bytes; 12 characters stay well under that.
    return st.text(_TEXT, max_size=12)


def field_table_values(profile: Profile = ROUND_TRIP) -> st.SearchStrategy[Any]:
    """One field-table value of the profile's kinds, nested lists and tables
    included."""
    scalars = [
        _SCALARS[kind] for kind in sorted(profile.table_kinds) if kind in _SCALARS
    ]
    base: st.SearchStrategy[Any] = st.one_of(scalars) if scalars else st.nothing()

    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        nested: list[st.SearchStrategy[Any]] = []
        if "list" in profile.table_kinds:
            nested.append(st.lists(children, max_size=4))
        if "dict" in profile.table_kinds:
            nested.append(st.dictionaries(_table_keys(), children, max_size=4))
        return st.one_of(nested) if nested else st.nothing()

    return st.recursive(base, extend, max_leaves=10)


def field_tables(profile: Profile = ROUND_TRIP) -> st.SearchStrategy[dict[str, Any]]:
    """Field tables (dicts with str keys) of the profile's value kinds."""
    tables = st.dictionaries(_table_keys(), field_table_values(profile), max_size=5)
    if profile.sorted_keys:
        return tables.map(sort_table_keys)
    return tables


def field_values(field: Field, profile: Profile = ROUND_TRIP) -> st.SearchStrategy[Any]:
    """Valid values for one method field, from its AMQP type and domain."""
    amqp_type = field.type
    if amqp_type == "bit":
        return st.booleans()
    if amqp_type in _INT_BITS:
        bits = _INT_BITS[amqp_type]
        if profile.signed_longlong and amqp_type == "longlong":
            bits = 63
        return st.integers(0, 2**bits - 1)
    if amqp_type == "shortstr":
        if profile.pamqp_names and field.domain in ("exchange-name", "queue-name"):
            return st.text(NAME_CHARS, max_size=127)
        if profile.pamqp_names and field.domain == "path":
            return shortstrs(max_chars=127)
        return shortstrs()
    if amqp_type == "longstr":
        if profile.text_longstr:
            return st.text(_TEXT, max_size=64).map(lambda s: s.encode("utf-8"))
        return st.binary(max_size=64)
    if amqp_type == "table":
        return field_tables(profile)
    if amqp_type == "timestamp":
        if profile.int_timestamps:
            # Seconds no datetime holds: sent as ints, decoded as ints.
            return st.one_of(timestamps(), st.integers(_MAX_SECONDS + 1, 2**64 - 1))
        return timestamps()
    raise AssertionError(f"no strategy for AMQP type {amqp_type!r} ({field})")


def method_kwargs(
    cls: type[Method], profile: Profile = ROUND_TRIP, *, all_fields: bool = False
) -> st.SearchStrategy[dict[str, Any]]:
    """Constructor keywords for ``cls``: every required field, and (unless
    ``all_fields``) any subset of the fields that have a default."""
    required = {
        f.name: field_values(f, profile)
        for f in cls.FIELDS
        if all_fields or f.default is REQUIRED
    }
    optional = {
        f.name: field_values(f, profile)
        for f in cls.FIELDS
        if not all_fields and f.default is not REQUIRED
    }
    return st.fixed_dictionaries(required, optional=optional)


def methods(
    cls: type[Method], profile: Profile = ROUND_TRIP
) -> st.SearchStrategy[Method]:
    """Instances of the method class ``cls`` with valid field values."""
    return method_kwargs(cls, profile).map(lambda kwargs: cls(**kwargs))


def any_method(profile: Profile = ROUND_TRIP) -> st.SearchStrategy[Method]:
    """An instance of any method of the registry."""
    return st.sampled_from(ALL_METHODS).flatmap(lambda cls: methods(cls, profile))


def property_values(
    field: Field, profile: Profile = ROUND_TRIP
) -> st.SearchStrategy[Any]:
    """Valid (present) values for one content property."""
    if profile.pamqp_properties:
        if field.name == "delivery_mode":
            return st.sampled_from([1, 2])
        if field.type == "shortstr":
            return shortstrs(min_size=1)
    return field_values(field, profile)


def properties_kwargs(
    profile: Profile = ROUND_TRIP,
) -> st.SearchStrategy[dict[str, Any]]:
    """Keywords for ``BasicProperties``: any subset of its properties."""
    optional = {
        f.name: property_values(f, profile)
        for f in spec.BasicProperties.FIELDS
        if not (profile.pamqp_properties and f.name == "cluster_id")
    }
    return st.fixed_dictionaries({}, optional=optional)


def basic_properties(
    profile: Profile = ROUND_TRIP,
) -> st.SearchStrategy[spec.BasicProperties]:
    """``BasicProperties`` with any subset of its 14 properties set."""
    return properties_kwargs(profile).map(lambda kwargs: spec.BasicProperties(**kwargs))
