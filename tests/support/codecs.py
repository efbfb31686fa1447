"""Switch amqp_client to its pure-Python codecs, for a test or a block.

The optional C speedups (amqp_client/_speedups.c) are reached through two
kinds of module globals: wire's ``_c_*`` functions (field tables, and the
properties check that lets the frame reader decode properties lazily) and the
generated modules' ``_L_*`` layouts (method arguments and content
properties). With all of them None, every codec runs its Python code, as a
build without a C compiler does.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
from collections.abc import Iterator
from types import ModuleType

from amqp_client import wire

WIRE_HOOKS = (
    "_c_encode_table",
    "_c_encode_array",
    "_c_decode_table",
    "_c_decode_array",
    # the check behind lazily decoded properties (_spec_base.lazy_decoder)
    "c_check_properties",
    "c_lazy_properties",
    "c_fill_lazy",
    # the frame reader's content fast path
    "c_content_tail",
    "c_decode_fields_or",
    "c_decode_properties_or",
)


def generated_modules() -> list[ModuleType]:
    """The modules of amqp_client.spec (where the C decoders' layouts live)."""
    import amqp_client.spec.methods
    import amqp_client.spec.properties

    package = amqp_client.spec.methods
    return [
        amqp_client.spec.properties,
        *(
            importlib.import_module(f"{package.__name__}.{info.name}")
            for info in pkgutil.iter_modules(package.__path__)
        ),
    ]


def speedup_hooks() -> list[tuple[ModuleType, str]]:
    """Every (module, global) through which a codec reaches the C code."""
    hooks = [(wire, name) for name in WIRE_HOOKS]
    for module in generated_modules():
        hooks += [(module, name) for name in vars(module) if name.startswith("_L_")]
    return hooks


@contextlib.contextmanager
def pure_python() -> Iterator[None]:
    """Inside the block, every codec runs its pure-Python code."""
    saved = [(module, name, getattr(module, name)) for module, name in speedup_hooks()]
    for module, name, _ in saved:
        setattr(module, name, None)
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)
