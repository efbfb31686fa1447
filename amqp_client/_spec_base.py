"""Base classes and validators for the generated protocol classes.

``amqp_client.spec`` (generated from the XML spec) subclasses :class:`Method`
and :class:`Properties` and calls the ``check_*`` functions here. This module
holds what is the same for every method: equality, repr, the slow paths that
turn a failed encode or decode into an error naming the field. The fast
paths (specialised encode/decode) are generated per class.

No I/O here, and nothing imports the generated package.
"""

from __future__ import annotations

import datetime
import functools
import math
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Self, SupportsIndex, TypeVar, cast

from amqp_client import wire as _wire
from amqp_client.errors import FrameDecodeError

__all__ = [
    "REQUIRED",
    "Buffer",
    "Field",
    "OCTETS",
    "Method",
    "Properties",
    "bit_value",
    "check_bit",
    "check_int",
    "check_longstr",
    "check_shortstr",
    "check_table",
    "check_timeout",
    "check_timestamp",
    "decode_error",
    "encode_error",
    "lazy_decoder",
    "new_object",
]

#: How generated decoders make the object they fill in, without __init__
#: (values from the wire are valid by construction of the codec). A module
#: global is found faster than ``cls.__new__``, which searches the class's
#: MRO on every call.
new_object: Callable[[type[Any]], Any] = object.__new__

#: A generated class's wire layout for the C decoders (see c_layout).
CLayout = tuple[tuple[object, ...], bytes, dict[bytes, str], int]


def _declined(*args: object) -> None:
    return None


def _c_function(index: int) -> Callable[..., Any]:
    speedups = _wire.SPEEDUPS
    return speedups[index] if speedups is not None else _declined


#: The C decoders of method arguments and content properties, and encoder
#: of content properties, when the speedups are built. They are only called
#: with a layout, and there is none while the speedups are off.
c_decode_fields: Callable[..., Any] = _c_function(4)
c_decode_properties: Callable[..., Any] = _c_function(5)
c_encode_properties: Callable[..., Any] = _c_function(6)

#: Every generated class's layout arguments, with its module's namespace,
#: so that use_speedups can remake or clear its ``_L_<class>`` global.
_LAYOUTS: list[tuple[dict[str, Any], type[Any], tuple[str | None, ...], bytes]] = []


def c_layout(
    cls: type[Any], names: tuple[str | None, ...], kinds: bytes
) -> CLayout | None:
    """The layout the C decoder of ``cls`` reads, or None without speedups.

    ``names`` is the slot of each wire field (None for a reserved one) and
    ``kinds`` one byte per field (the ``KIND_*`` of generated/spec.h). The
    decoder stores through the slots' member descriptors, so each name must
    be a slot of ``cls`` itself. The generated module keeps the result in
    ``_L_<class name>``; :func:`use_speedups` resets it there.
    """
    module = sys.modules[cls.__module__]
    _LAYOUTS.append((vars(module), cls, names, kinds))
    return _layout(cls, names, kinds)


def use_speedups(enabled: bool) -> bool:
    """Run every codec on the C speedups (when built) or on its Python code.

    The one switch for the whole library (tests hold the two to the same
    results; ``AMQP_CLIENT_NO_SPEEDUPS=1`` sets it off at import): the
    field-table codecs of :mod:`amqp_client.wire` and the layout of every
    generated class. Returns whether the C code is now in use.
    """
    on = _wire.use_c_codecs(enabled)
    for namespace, cls, names, kinds in _LAYOUTS:
        namespace[f"_L_{cls.__name__}"] = _layout(cls, names, kinds) if on else None
    return on


def _layout(
    cls: type[Any], names: tuple[str | None, ...], kinds: bytes
) -> CLayout | None:
    if _wire.c_decode_fields is None:
        return None
    descriptors: list[object] = []
    for name in names:
        if name is None:
            descriptors.append(None)
            continue
        descriptor = cls.__dict__.get(name)
        if not isinstance(descriptor, types.MemberDescriptorType):
            raise TypeError(f"{cls.__name__}.{name} is not a slot")
        descriptors.append(descriptor)
    if len(descriptors) != len(kinds):
        raise ValueError(f"{cls.__name__}: {len(names)} names, {len(kinds)} kinds")
    return tuple(descriptors), kinds, _wire.NAMES, _wire.NAMES_MAX


#: What a generated decoder reads from: the frame reader hands it its whole
#: receive buffer with offsets, so nothing is copied. (memoryview is left
#: out because it has no ``decode()``; :meth:`_Codec.decode` converts one.)
Buffer = bytes | bytearray


class _Required:
    """Marker default of a field that has no default (a notnull assert)."""

    _instance: ClassVar[_Required | None] = None

    def __new__(cls) -> _Required:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

#: ``OCTETS[n] == bytes([n])``: the length prefix of a shortstr without a
#: struct call on the hot path.
OCTETS: tuple[bytes, ...] = tuple(bytes((i,)) for i in range(256))

_INT_LIMITS = {"octet": 8, "short": 16, "long": 32, "longlong": 64}


@dataclass(frozen=True, slots=True)
class Field:
    """Describes one field of a method or one content property.

    Attributes:
        name: the Python attribute and parameter name (``auto_delete``).
        spec_name: the name in the spec (``auto-delete``).
        type: the AMQP primitive type (``bit``, ``shortstr``, ``table``...).
        domain: the spec domain the field was declared with.
        default: the default value, or :data:`REQUIRED`.

    The spec's text for the field is in the class docstring (its ``Args``
    section), once: ``help()``, the ``doc`` command and the reference show
    it from there.
    """

    name: str
    spec_name: str
    type: str
    domain: str
    default: Any


def check_shortstr(value: object, name: str) -> str:
    """Return ``value`` if it is a str of at most 255 UTF-8 bytes.

    Raises:
        TypeError: not a str.
        ValueError: longer than 255 bytes encoded.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be str, not {type(value).__name__}")
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > 255:
        raise ValueError(
            f"{name} is {size} bytes in UTF-8; a shortstr holds at most 255"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{name} is not encodable as UTF-8: {exc.reason}") from None
    return value


def check_longstr(value: object, name: str) -> bytes:
    """Return ``value`` as bytes if it is bytes-like and under 4 GiB.

    Raises:
        TypeError: a str or another non-bytes type (encode text yourself).
        ValueError: 2**32 bytes or more.
    """
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        if len(data) > 0xFFFFFFFF:
            raise ValueError(
                f"{name} is {len(data)} bytes; a longstr holds at most 2**32-1"
            )
        return data
    raise TypeError(f"{name} must be bytes, not {type(value).__name__}")


def check_int(value: object, name: str, amqp_type: str) -> int:
    """Return ``value`` if it is an int that fits the unsigned AMQP type.

    Raises:
        TypeError: not an int, or a bool (an int subclass, but ``True`` for a
            count or a tag is a mistake, not the number 1).
        ValueError: negative or too large for the type.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be int, not {type(value).__name__}")
    bits = _INT_LIMITS[amqp_type]
    if not 0 <= value < 1 << bits:
        raise ValueError(
            f"{name}={value} is outside 0..{(1 << bits) - 1} ({amqp_type})"
        )
    return int(value)


def check_timeout(timeout: float | None, name: str = "timeout") -> float | None:
    """A ``timeout=`` argument: None, or a finite number of seconds >= 0.

    Every public call that waits checks it this way, before anything is sent.

    Raises:
        TypeError: not None and not an int or float (bool and str refused).
        ValueError: negative, NaN or infinite.
    """
    if timeout is None:
        return None
    if type(timeout) is bool or not isinstance(timeout, int | float):
        raise TypeError(
            f"{name}: expected None or a number of seconds, got "
            f"{type(timeout).__name__}"
        )
    if not math.isfinite(timeout) or timeout < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {timeout!r}")
    return timeout


def check_bit(value: object, name: str) -> bool:
    """Return ``value`` as a bool; accepts bools and the ints 0 and 1.

    Raises:
        TypeError: any other value.
    """
    if value is True or value is False:
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise TypeError(f"{name} must be bool, not {type(value).__name__}")


def bit_value(value: object) -> int:
    """The bit a field value stands for: 1 or 0 for a bool or the ints 0/1.

    The generated encoders call it for every bit they fold into an octet:
    the constructor checked the value, but an attribute may have been set
    to anything since.

    Raises:
        TypeError: any other value.
    """
    if value is True:
        return 1
    if value is False:
        return 0
    return 1 if check_bit(value, "bit field") else 0


def check_table(value: object, name: str) -> dict[str, Any]:
    """Return ``value`` as a dict if it is a mapping (``None`` -> empty).

    Values are checked when the table is encoded, before anything is sent.

    Raises:
        TypeError: not a mapping.
    """
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{name} must be a dict, not {type(value).__name__}")


def check_timestamp(value: object, name: str) -> datetime.datetime | int:
    """Return ``value`` if it is a datetime or an int of seconds since the epoch.

    Naive datetimes are taken as UTC; ints must fit uint64.

    Raises:
        TypeError: neither a datetime nor an int.
        ValueError: an int outside 0..2**64-1.
    """
    if isinstance(value, datetime.datetime):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= 0xFFFFFFFFFFFFFFFF:
            raise ValueError(f"{name}={value} is outside 0..2**64-1 seconds")
        return value
    raise TypeError(
        f"{name} must be datetime or int seconds, not {type(value).__name__}"
    )


_CHECKS = {
    "shortstr": check_shortstr,
    "longstr": check_longstr,
    "bit": check_bit,
    "table": check_table,
    "timestamp": check_timestamp,
}


def _check_field(field: Field, value: object) -> None:
    if field.type in _INT_LIMITS:
        check_int(value, field.name, field.type)
    else:
        _CHECKS[field.type](value, field.name)


#: Fields that carry a password or token: their repr shows ``'***'``
#: (a password never appears in a repr, log or error). By (method, field).
SECRET_FIELDS: frozenset[tuple[str, str]] = frozenset(
    {
        ("connection.start-ok", "response"),  # SASL PLAIN: user and password
        ("connection.secure-ok", "response"),
        ("connection.update-secret", "new_secret"),
    }
)


class _Codec:
    """What Method and Properties share: fields, equality, repr."""

    __slots__ = ()

    NAME: ClassVar[str]
    FIELDS: ClassVar[tuple[Field, ...]]

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in self.FIELDS)

    __hash__ = None  # type: ignore[assignment]  # typeshed types __hash__ as a method; mutable, like dataclasses

    def __repr__(self) -> str:
        args = ", ".join(
            f"{f.name}='***'"
            if (self.NAME, f.name) in SECRET_FIELDS
            else f"{f.name}={getattr(self, f.name)!r}"
            for f in self.FIELDS
        )
        return f"{type(self).__name__}({args})"

    if TYPE_CHECKING:
        # Each generated class defines both (specialised for its fields);
        # the base declares them for the type checker only, so a class
        # without them fails at once instead of through a stub.

        def encode(self) -> bytes: ...

        @classmethod
        def decode_from(cls, buf: Buffer, offset: int, end: int) -> Self: ...

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> Self:
        """Decode ``data``, which must hold exactly one encoded value.

        Raises:
            FrameDecodeError: the bytes do not decode, or bytes are left over.
        """
        if isinstance(data, memoryview):
            data = data.tobytes()
        return cls.decode_from(data, 0, len(data))


class Method(_Codec):
    """Base of every generated method class (``QueueDeclare``...).

    Class attributes (set by the generator):
        CLASS_ID, METHOD_ID: the ids on the wire; INDEX is
            ``(CLASS_ID << 16) | METHOD_ID``, the registry key.
        NAME: ``"queue.declare"``.
        SYNCHRONOUS: the sender waits for one of RESPONSES.
        RESPONSES: the method classes that answer it (empty if none).
        HAS_CONTENT: a content header and body frames follow it.
        DEPRECATED: the spec marks it deprecated.
        FIELDS: the non-reserved fields in wire order.
    """

    __slots__ = ()

    CLASS_ID: ClassVar[int]
    METHOD_ID: ClassVar[int]
    INDEX: ClassVar[int]
    SYNCHRONOUS: ClassVar[bool]
    RESPONSES: ClassVar[tuple[type[Method], ...]] = ()
    HAS_CONTENT: ClassVar[bool]
    DEPRECATED: ClassVar[bool] = False
    #: Every field on the wire, reserved ones included, as (name, type).
    WIRE: ClassVar[tuple[tuple[str, str], ...]]


class Properties(_Codec):
    """Base of generated content-property classes (``BasicProperties``)."""

    __slots__ = ()

    CLASS_ID: ClassVar[int]


def encode_error(obj: _Codec, exc: Exception) -> Exception:
    """Turn a failed fast-path encode into a TypeError/ValueError naming the field.

    The generated encoders run without checks; when one fails (an attribute
    was set to a bad value after construction), this re-checks every field.
    """
    for field in obj.FIELDS:
        value = getattr(obj, field.name)
        if value is None and (isinstance(obj, Properties) or field.type == "table"):
            continue
        try:
            _check_field(field, value)
        except (TypeError, ValueError) as err:
            return type(err)(f"{obj.NAME}: {err}")
    if isinstance(exc, TypeError | ValueError):
        return exc
    return ValueError(f"{obj.NAME}: cannot encode: {exc!r}")


def _skip(amqp_type: str, buf: Buffer, offset: int) -> int:
    """Decode one field slowly, for diagnosis; return the next offset."""
    from amqp_client import wire

    size = {"octet": 1, "short": 2, "long": 4, "longlong": 8, "timestamp": 8}.get(
        amqp_type
    )
    if size is not None:
        if offset + size > len(buf):
            raise FrameDecodeError("truncated")
        return offset + size
    if amqp_type == "shortstr":
        return wire.decode_shortstr(buf, offset)[1]
    if amqp_type == "longstr":
        return wire.decode_longstr(buf, offset)[1]
    if amqp_type == "table":
        return wire.decode_table(buf, offset)[1]
    raise FrameDecodeError(f"unknown type {amqp_type}")


def _bad_method_field(cls: type[Method], data: bytes) -> str | None:
    """Walk the wire fields slowly; describe the first that does not decode."""
    offset = 0
    bit = 0
    for name, amqp_type in cls.WIRE:
        if amqp_type == "bit":
            if bit % 8 == 0:
                if offset >= len(data):
                    return f"field {name!r} (bit): truncated"
                offset += 1
            bit += 1
            continue
        bit = 0
        try:
            offset = _skip(amqp_type, data, offset)
        except (FrameDecodeError, IndexError, ValueError) as err:
            return f"field {name!r} ({amqp_type}): {err}"
    return None


def _bad_property(cls: type[Properties], data: bytes) -> str | None:
    """Walk the property flags and present properties; describe the first
    that does not decode."""
    count = len(cls.FIELDS)
    words = max(1, (count + 14) // 15)
    flags = 0
    offset = 0
    for _ in range(words):
        if offset + 2 > len(data):
            return "property flags: truncated"
        word = int.from_bytes(data[offset : offset + 2], "big")
        offset += 2
        flags = flags << 16 | word
        if not word & 1:
            break
    else:
        return "property flags: too many flag words"
    flags <<= 16 * (words - 1 - (offset // 2 - 1))
    for k, field in enumerate(cls.FIELDS):
        word, bit = divmod(k, 15)
        if not flags >> (16 * (words - 1 - word) + 15 - bit) & 1:
            continue
        try:
            offset = _skip(field.type, data, offset)
        except (FrameDecodeError, IndexError, ValueError) as err:
            return f"property {field.name!r} ({field.type}): {err}"
    return None


def decode_error(
    cls: type[_Codec], buf: Buffer, start: int, end: int, exc: BaseException | None
) -> FrameDecodeError:
    """Explain why ``cls`` could not decode ``buf[start:end]``.

    Called only after the fast generated decoder failed (or did not end
    exactly at ``end``): walks the fields one by one to name the first that
    does not decode within the payload.
    """
    size = end - start
    prefix = f"cannot decode {cls.NAME} from {size} bytes"
    data = bytes(buf[start:end])
    if issubclass(cls, Method):
        problem = _bad_method_field(cls, data)
    elif issubclass(cls, Properties):
        problem = _bad_property(cls, data)
    else:  # pragma: no cover - only methods and properties are generated
        problem = None
    if problem is not None:
        return FrameDecodeError(f"{prefix}: {problem}")
    if exc is None:
        return FrameDecodeError(f"{prefix}: the payload has bytes left over")
    detail = str(exc) if isinstance(exc, FrameDecodeError) else repr(exc)
    return FrameDecodeError(f"{prefix}: {detail}")


# -- content properties decoded on first access ----------------------------------

_P = TypeVar("_P", bound=Properties)

#: Property types -> the kinds the C checker reads (see _speedups.c).
_PROPERTY_KINDS = {
    "shortstr": "s",
    "longstr": "S",
    "octet": "B",
    "short": "H",
    "long": "I",
    "longlong": "Q",
    "timestamp": "T",
    "table": "t",
}


def lazy_decoder(cls: type[_P]) -> Callable[[bytes, int, int], _P]:
    """A decoder of ``cls`` that leaves the decoding to the first access.

    The returned ``decode(buf, offset, end)`` checks, without decoding, that
    ``buf[offset:end]`` holds well-formed property flags and properties
    (``_speedups.check_properties``: lengths, table structure, tags, names),
    keeps a copy of those bytes in an instance of a private subclass of
    ``cls`` and returns it; the properties are decoded, once, when one of
    them is first read (or the object is compared, copied or pickled). So a
    consumer that reads only the body does not pay for the header table,
    and malformed properties are still refused on arrival, which ends the
    connection with frame-error (501) as before. Input the checker is
    unsure of (non-ASCII names, deep nesting, a malformed value) is decoded
    at once, which raises or not as ``cls.decode_from`` decides. Without
    the C speedups this is ``cls.decode_from`` itself: a Python check would
    cost about what decoding does.

    Two threads reading a fresh instance at once may both decode it; each
    fills only what is still unset, so both see the same values (and a
    value set by the application before the first read is kept).
    """
    make = _wire.c_lazy_properties
    fill_lazy = _wire.c_fill_lazy
    kinds = "".join(_PROPERTY_KINDS.get(f.type, "?") for f in cls.FIELDS)
    if make is None or fill_lazy is None or "?" in kinds or len(kinds) > 15:
        return cls.decode_from
    # The class's decoder called straight from C where the generated module
    # has its layout (``_L_<name>``): the classmethod is a Python call
    # around the same C decoder.
    decode: Callable[[bytes, int, int], _P] = cls.decode_from
    layout = getattr(sys.modules.get(cls.__module__), f"_L_{cls.__name__}", None)
    decode_or = _wire.c_decode_properties_or
    if layout is not None and decode_or is not None:
        decode = functools.partial(decode_or, cls, layout, cls.decode_from)
    lazy = _lazy_class(cls, fill_lazy, decode)
    # One C call: check, then the undecoded instance, or decode at once.
    return functools.partial(
        make, lazy, lazy.__dict__["_amqp_raw"], kinds.encode(), decode
    )


def _plain_properties(cls: type[_P], values: dict[str, Any]) -> _P:
    """A plain ``cls`` instance with these values (a lazy one, unpickled)."""
    obj = object.__new__(cls)
    for name, value in values.items():
        setattr(obj, name, value)
    return obj


def _lazy_class(
    cls: type[_P],
    fill_lazy: Callable[..., None],
    decode: Callable[[bytes, int, int], _P],
) -> type[_P]:
    """A subclass of ``cls`` whose instances hold their encoded properties
    in ``_amqp_raw`` until a property is first read."""
    names = frozenset(f.name for f in cls.FIELDS)
    slots: tuple[object, ...] = tuple(cls.__dict__[f.name] for f in cls.FIELDS)

    def __getattr__(self: Any, name: str) -> Any:
        # Only called when normal lookup fails: a property slot not yet set.
        if name in names:
            fill(self)
            return object.__getattribute__(self, name)
        raise AttributeError(
            f"{cls.__name__!r} object has no attribute {name!r}", name=name, obj=self
        )

    def __eq__(self: Any, other: object) -> bool:
        if not isinstance(other, cls):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in names)

    def __reduce_ex__(self: Any, protocol: SupportsIndex) -> Any:
        # Copied or pickled as the plain class, decoded.
        fill(self)
        return _plain_properties, (cls, {n: getattr(self, n, None) for n in names})

    namespace: dict[str, Any] = {
        "__slots__": ("_amqp_raw",),
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
        "__getattr__": __getattr__,
        "__eq__": __eq__,
        "__hash__": None,
        "__reduce_ex__": __reduce_ex__,
    }
    lazy = type(cls.__name__, (cls,), namespace)
    # fill(obj): decode obj._amqp_raw into the slots still unset (a value
    # the application set first is kept), all at once (no Python code runs
    # meanwhile: another thread sees none or all of them), then set it to
    # None; nothing when it is None already. One C call.
    fill: Callable[[object], None] = functools.partial(
        fill_lazy, lazy.__dict__["_amqp_raw"], decode, slots
    )
    return cast(type[_P], lazy)
