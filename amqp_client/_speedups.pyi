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
