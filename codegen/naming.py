"""Pure naming rules: spec names to Python names. No I/O, no lxml.

* fields and parameters: ``no-wait`` -> ``no_wait``; a Python keyword gets a
  trailing underscore (``global`` -> ``global_``);
* method classes: ``queue`` + ``declare-ok`` -> ``QueueDeclareOk``;
* channel API methods: ``queue_declare``; connection API methods drop the
  class prefix (``update_secret``);
* reply-code exceptions: ``not-found`` -> ``NotFoundError``; a name that would
  shadow a builtin gets an ``AMQP`` prefix (``AMQPSyntaxError``);
* constants: ``frame-min-size`` -> ``FRAME_MIN_SIZE``.
"""

from __future__ import annotations

import builtins
import keyword

#: Spec names that Python code knows under another name. The 14th basic
#: property is "reserved" in the XML; every client and the RabbitMQ docs call
#: it cluster-id, and a property named "reserved" would read as unusable.
PROPERTY_ALIASES: dict[tuple[str, str], str] = {("basic", "reserved"): "cluster-id"}


def _words(name: str) -> list[str]:
    return [w for w in name.replace("_", "-").replace(" ", "-").split("-") if w]


def python_name(name: str) -> str:
    """A field or parameter name: ``auto-delete`` -> ``auto_delete``."""
    result = "_".join(_words(name)).lower()
    # Hard keywords only: soft ones (match, case, type from 3.12) are valid
    # names, and the generated code must not depend on the Python version.
    if keyword.iskeyword(result):
        result += "_"
    if not result.isidentifier():
        raise ValueError(f"{name!r} does not make a Python identifier")
    return result


def pascal(name: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in _words(name))


def class_name(amqp_class: str, method: str) -> str:
    """A method class: ``basic``, ``get-ok`` -> ``BasicGetOk``."""
    return pascal(amqp_class) + pascal(method)


def api_name(amqp_class: str, method: str) -> str:
    """A channel API method: ``queue``, ``declare`` -> ``queue_declare``."""
    return python_name(f"{amqp_class}-{method}")


def connection_api_name(method: str) -> str:
    """A connection API method: ``update-secret`` -> ``update_secret``."""
    return python_name(method)


def constant_name(name: str) -> str:
    """A module constant: ``frame-min-size`` -> ``FRAME_MIN_SIZE``."""
    return "_".join(_words(name)).upper()


def error_name(constant: str) -> str:
    """A reply-code exception: ``not-found`` -> ``NotFoundError``."""
    name = pascal(constant)
    if not name.endswith("Error"):
        name += "Error"
    if hasattr(builtins, name):
        name = "AMQP" + name
    return name


def property_name(amqp_class: str, field: str) -> str:
    return python_name(PROPERTY_ALIASES.get((amqp_class, field), field))


def properties_class_name(amqp_class: str) -> str:
    return pascal(amqp_class) + "Properties"
