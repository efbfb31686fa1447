"""Docstring text from the spec's <doc> elements. Pure functions, no I/O.

The spec's prose is hard-wrapped and indented for XML; here it is dedented,
reflowed paragraph by paragraph, and laid out Google-style (Args, Returns,
Raises, Rules) so that ``help()`` and ``python -m amqp_client doc`` read well
in an 80-column terminal. Grammar blocks are kept verbatim.

The ``md_*`` helpers turn the same text into GitHub-flavoured Markdown for
docs/reference.md: escaped prose, code spans and heading anchors.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable

from codegen.model import Doc, Rule

#: Text width of generated docstrings, before the template's indentation.
WIDTH = 72


def paragraphs(text: str) -> list[str]:
    """Split dedented doc text into paragraphs, each joined to one line."""
    result: list[str] = []
    for block in text.split("\n\n"):
        words = " ".join(block.split())
        if words:
            result.append(words)
    return result


def fill(text: str, indent: str = "", width: int = WIDTH) -> list[str]:
    """Reflow ``text`` into lines of at most ``width`` (indent included)."""
    lines: list[str] = []
    for i, para in enumerate(paragraphs(text)):
        if i:
            lines.append("")
        lines.extend(
            textwrap.wrap(
                para,
                width=width,
                initial_indent=indent,
                subsequent_indent=indent,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return lines


def hanging(head: str, text: str, indent: str, width: int = WIDTH) -> list[str]:
    """``head`` followed by ``text``, continuation lines indented further."""
    paras = paragraphs(text) or [""]
    first = textwrap.wrap(
        f"{head} {paras[0]}".rstrip(),
        width=width,
        initial_indent=indent,
        subsequent_indent=indent + "    ",
        break_long_words=False,
        break_on_hyphens=False,
    )
    lines = first or [indent + head]
    for para in paras[1:]:
        lines.append("")
        lines.extend(
            textwrap.wrap(
                para,
                width=width,
                initial_indent=indent + "    ",
                subsequent_indent=indent + "    ",
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return lines


def text_of(docs: Iterable[Doc], kind: str = "") -> str:
    """The docs of one kind joined as paragraphs."""
    return "\n\n".join(d.text for d in docs if d.kind == kind)


def sentence(label: str) -> str:
    """A label as a sentence: ``"declare queue"`` -> ``"Declare queue."``."""
    label = label.strip()
    if not label:
        return ""
    label = label[0].upper() + label[1:]
    return label if label.endswith(".") else label + "."


def grammar(docs: Iterable[Doc]) -> list[str]:
    """Grammar blocks, verbatim, indented as a literal block."""
    lines: list[str] = []
    for doc in docs:
        if doc.kind == "grammar":
            if lines:
                lines.append("")
            lines.extend(
                "    " + line if line else "" for line in doc.text.splitlines()
            )
    return lines


def rules_section(
    rules: Iterable[tuple[str, Rule]], error_names: dict[str, str]
) -> list[str]:
    """A ``Rules:`` section: each rule's text and the error it fails with."""
    lines: list[str] = []
    for owner, rule in rules:
        text = text_of(rule.docs)
        if rule.on_failure:
            error = error_names.get(rule.on_failure)
            failing = f"{rule.on_failure} -> {error}" if error else rule.on_failure
            text += f"\n\n(On failure: {failing}.)"
        head = f"{owner}{rule.name}:" if owner else f"{rule.name}:"
        lines.extend(hanging(head, text, "    "))
    return ["Rules:", *lines] if lines else []


def escape(text: str) -> str:
    """Make text safe inside a triple-quoted docstring."""
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


# --- Markdown (docs/reference.md) ---------------------------------------------------

#: Characters that mean something inline in GitHub-flavoured Markdown (or, as
#: ``|``, inside a table row); a backslash makes each one literal.
_MD_SPECIAL = frozenset("\\`*_[]<>|~&")


def md_escape(text: str) -> str:
    """Spec prose as literal Markdown text on one line.

    Every character with an inline meaning is backslash-escaped (so an
    overlay's ``<tag>`` or ``a|b`` stays text, inside a table cell too), and a
    leading ``#``, ``-``, ``+``, ``=`` or ``1.`` cannot start a heading, a
    list or an underline.
    """
    out = "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in text)
    if out[:1] in ("#", "-", "+", "="):
        out = "\\" + out
    head, dot, rest = out.partition(".")
    if dot and head.isdigit():
        out = f"{head}\\.{rest}"
    head, paren, rest = out.partition(")")
    if paren and head.isdigit():
        out = f"{head}\\){rest}"
    return out


def md_paragraphs(text: str) -> list[str]:
    """Doc text as escaped Markdown paragraphs, one line each."""
    return [md_escape(p) for p in paragraphs(text)]


def md_code(text: str) -> str:
    """An inline code span holding ``text`` verbatim, safe in a table cell.

    The fence is one backtick longer than the longest run inside; a ``|``
    is escaped because GitHub splits table cells before reading code spans.
    """
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    body = text.replace("|", "\\|")
    return f"{fence}{pad}{body}{pad}{fence}"


def md_slug(heading: str) -> str:
    """The anchor GitHub gives a heading (github-slugger's rule).

    ``heading`` is the rendered text (no backticks): lower-cased, everything
    but letters, digits, ``_``, ``-`` and spaces dropped, spaces made hyphens.
    Duplicates are told apart by :class:`Slugs`.
    """
    kept = "".join(ch for ch in heading.lower() if ch.isalnum() or ch in "_- ")
    return kept.replace(" ", "-")


class Slugs:
    """Hands out heading anchors in document order, numbering repeats as
    GitHub does (``a``, ``a-1``, ``a-2``...)."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def __call__(self, heading: str) -> str:
        base = result = md_slug(heading)
        while result in self._seen:
            self._seen[base] += 1
            result = f"{base}-{self._seen[base]}"
        self._seen[result] = 0
        return result
