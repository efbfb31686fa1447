"""Switch amqp_client to its pure-Python codecs, for a test or a block.

Through the library's one switch, ``amqp_client._spec_base.use_speedups``:
the field-table codecs of wire and the generated classes' C layouts go off
together, as in a build without a C compiler.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from amqp_client import wire
from amqp_client._spec_base import use_speedups


@contextlib.contextmanager
def pure_python() -> Iterator[None]:
    """Inside the block, every codec runs its pure-Python code."""
    was_on = wire.c_decode_fields is not None
    use_speedups(False)
    try:
        yield
    finally:
        use_speedups(was_on)
