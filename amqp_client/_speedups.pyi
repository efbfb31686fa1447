# The optional C speedups (see _speedups.c): amqp_client.wire's field-table
# codecs, and the generated classes' decoders (method arguments, content
# properties) and properties encoder, driven by the layouts the generator
# writes (_spec_base.c_layout). Each returns None for what it leaves to the
# Python code.

from typing import Any

def encode_table(table: object, /) -> bytes | None: ...
def encode_array(items: object, /) -> bytes | None: ...
def decode_table(
    buf: bytes, offset: int, names: dict[bytes, str], names_max: int, /
) -> tuple[dict[str, object], int] | None: ...
def decode_array(
    buf: bytes, offset: int, names: dict[bytes, str], names_max: int, /
) -> tuple[list[object], int] | None: ...
def decode_fields(
    cls: type[Any], layout: tuple[Any, ...], buf: object, offset: int, end: int, /
) -> Any: ...
def decode_properties(
    cls: type[Any], layout: tuple[Any, ...], buf: object, offset: int, end: int, /
) -> Any: ...
def encode_properties(
    properties: object, layout: tuple[Any, ...], /
) -> bytes | None: ...
def check_properties(kinds: bytes, buf: bytes, offset: int, end: int, /) -> bool: ...
def lazy_properties(
    cls: type[Any],
    raw_slot: object,
    kinds: bytes,
    decode: Any,
    buf: bytes,
    offset: int,
    end: int,
    /,
) -> Any: ...
def content_tail(
    data: bytes,
    hpos: int,
    channel: int,
    class_id: int,
    limit: int,
    decode: Any,
    frame_cls: type[Any],
    slots: tuple[Any, Any, Any, Any],
    method: Any,
    /,
) -> tuple[Any, int] | None: ...
def decode_fields_or(
    cls: type[Any],
    layout: tuple[Any, ...],
    decode: Any,
    buf: bytes,
    offset: int,
    end: int,
    /,
) -> Any: ...
def fill_slots(obj: object, source: object, slots: tuple[object, ...], /) -> None: ...
def fill_lazy(
    raw_slot: object, decode: Any, slots: tuple[object, ...], obj: object, /
) -> None: ...
def decode_properties_or(
    cls: type[Any],
    layout: tuple[Any, ...],
    decode: Any,
    buf: bytes,
    offset: int,
    end: int,
    /,
) -> Any: ...
