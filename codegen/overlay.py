"""Merge an overlay spec over a base spec.

An overlay may add constants, domains, classes, methods, fields and
responses of an existing method (with ``synchronous="1"``, to fix an
erratum of the base file) and content properties of an existing class. Repeating an
identical constant or domain is a no-op; anything that would redefine what
the base already says (another value, another type, a method name or index
already taken, a field name already used) is a :class:`SpecError` naming
both places.
"""

from __future__ import annotations

from dataclasses import replace

from codegen.model import AMQPClass, Constant, Domain, Field, Method, Spec, SpecError


def _conflict(new: object, old: object, what: str) -> SpecError:
    return SpecError(
        f"{getattr(new, 'source', '?')}: {what} conflicts with the definition at "
        f"{getattr(old, 'source', '?')}"
    )


def _merge_fields(
    base: tuple[Field, ...], extra: tuple[Field, ...], owner: str
) -> tuple[Field, ...]:
    by_name = {f.name: f for f in base}
    for fld in extra:
        if fld.name in by_name:
            raise _conflict(fld, by_name[fld.name], f"field {owner}.{fld.name}")
        by_name[fld.name] = fld
    return base + extra


def _merge_method(cls: AMQPClass, old: Method, new: Method) -> Method:
    """Extend an existing method: fields, responses, and synchronous="1".

    Adding a response is how an overlay fixes an erratum of the base file
    (basic.recover answers with recover-ok but the XML lists no response);
    a method with a response is synchronous, so ``synchronous="1"`` may be
    added with it. The index, the content flag and the chassis stay as the
    base says.
    """
    where = f"{cls.name}.{new.name}"
    if new.index not in (-1, old.index):
        raise _conflict(new, old, f"method {where} index {new.index}")
    if new.chassis or (new.content and not old.content):
        raise _conflict(
            new,
            old,
            f"method {where} (an overlay may only add fields, responses and "
            'synchronous="1" to it)',
        )
    for response in new.responses:
        if response in old.responses:
            raise _conflict(new, old, f"method {where} response {response!r}")
    return replace(
        old,
        synchronous=old.synchronous or new.synchronous,
        responses=old.responses + new.responses,
        fields=_merge_fields(old.fields, new.fields, where),
        docs=old.docs + new.docs,
        rules=old.rules + new.rules,
    )


def _merge_class(old: AMQPClass, new: AMQPClass) -> AMQPClass:
    if new.index not in (-1, old.index):
        raise _conflict(new, old, f"class {new.name} index {new.index}")
    methods = list(old.methods)
    for method in new.methods:
        existing = next((m for m in methods if m.name == method.name), None)
        if existing is not None:
            methods[methods.index(existing)] = _merge_method(old, existing, method)
            continue
        clash = next((m for m in methods if m.index == method.index), None)
        if clash is not None:
            raise _conflict(
                method,
                clash,
                f"method {new.name}.{method.name} index {method.index} "
                f"(taken by {new.name}.{clash.name})",
            )
        methods.append(method)
    return replace(
        old,
        methods=tuple(methods),
        properties=_merge_fields(old.properties, new.properties, new.name),
        docs=old.docs + new.docs,
        rules=old.rules + new.rules,
    )


def _merge_constants(
    base: tuple[Constant, ...], extra: tuple[Constant, ...]
) -> tuple[Constant, ...]:
    merged = list(base)
    for const in extra:
        old = next((c for c in merged if c.name == const.name), None)
        if old is None:
            merged.append(const)
        elif (old.value, old.error_class) != (const.value, const.error_class):
            raise _conflict(const, old, f"constant {const.name}={const.value}")
    return tuple(merged)


def _merge_domains(
    base: tuple[Domain, ...], extra: tuple[Domain, ...]
) -> tuple[Domain, ...]:
    merged = list(base)
    for domain in extra:
        old = next((d for d in merged if d.name == domain.name), None)
        if old is None:
            merged.append(domain)
        elif (old.type, old.asserts) != (domain.type, domain.asserts):
            raise _conflict(domain, old, f"domain {domain.name} (type {domain.type})")
    return tuple(merged)


def merge(base: Spec, overlay: Spec) -> Spec:
    """Return ``base`` with ``overlay`` merged over it (see module doc).

    Raises:
        SpecError: a conflicting redefinition, naming both places.
    """
    classes = list(base.classes)
    for cls in overlay.classes:
        old = next((c for c in classes if c.name == cls.name), None)
        if old is not None:
            classes[classes.index(old)] = _merge_class(old, cls)
            continue
        clash = next((c for c in classes if c.index == cls.index), None)
        if clash is not None:
            raise _conflict(
                cls,
                clash,
                f"class {cls.name} index {cls.index} (taken by {clash.name})",
            )
        classes.append(cls)
    return replace(
        base,
        constants=_merge_constants(base.constants, overlay.constants),
        domains=_merge_domains(base.domains, overlay.domains),
        classes=tuple(classes),
        files=base.files + overlay.files,
    )
