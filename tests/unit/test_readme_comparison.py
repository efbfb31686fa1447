"""The README's comparison table cites a source for every cell.

Each cell of the table in "Compared with pika, aio-pika and amqp091-go"
carries one or more bracketed numbers (``[14]``); each number is an item of
the numbered lists below the table. The checks here: every cell cites, every
cited number is listed, every listed number is cited, the numbers run 1..N
without gaps, and each source for our own column names tests
(``tests/...py::test_name``) that exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
HEADING = "## Compared with pika, aio-pika and amqp091-go"
COLUMNS = ("amqp-client", "pika", "aio-pika", "amqp091-go")
PEERS = COLUMNS[1:]

MARKER = re.compile(r"\[(\d+)\]")
LIST_ITEM = re.compile(r"^(\d+)\. (.+)$")
TEST_REF = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
ENDS_CITED = re.compile(r"(\s\[\d+\])+$")
RELEASE_CLAUSE = re.compile(r"^(v?\d+\.\d+\.\d+|main branch)\b")


@dataclass(frozen=True)
class Row:
    feature: str
    cells: dict[str, str]


@dataclass(frozen=True)
class Section:
    rows: list[Row]
    sources: dict[int, str]
    order: list[int]


def split_row(line: str) -> list[str]:
    """The cells of one table line (no leading or trailing pipe)."""
    assert line.startswith("|") and line.endswith("|"), line
    return [cell.strip() for cell in line[1:-1].split("|")]


def section_text(readme: str) -> str:
    start = readme.index(HEADING)
    end = readme.find("\n## ", start + len(HEADING))
    return readme[start:] if end == -1 else readme[start:end]


def parse(text: str) -> Section:
    lines = text.splitlines()
    table = [line for line in lines if line.startswith("|")]
    header, rule, *body = table
    assert split_row(header)[1:] == list(COLUMNS), header
    assert all(set(cell) <= {"-", ":"} for cell in split_row(rule)), rule
    rows: list[Row] = []
    for line in body:
        feature, *cells = split_row(line)
        assert len(cells) == len(COLUMNS), line
        rows.append(Row(feature, dict(zip(COLUMNS, cells, strict=True))))
    sources: dict[int, str] = {}
    order: list[int] = []
    for line in lines:
        match = LIST_ITEM.match(line)
        if match:
            number = int(match.group(1))
            assert number not in sources, f"source {number} listed twice"
            sources[number] = match.group(2)
            order.append(number)
    return Section(rows, sources, order)


@pytest.fixture(scope="module")
def section() -> Section:
    return parse(section_text(README.read_text(encoding="utf-8")))


def cited(cell: str) -> list[int]:
    return [int(n) for n in MARKER.findall(cell)]


def test_the_table_has_rows(section: Section) -> None:
    assert len(section.rows) >= 9
    features = [row.feature for row in section.rows]
    assert all(features), "a row without a feature name"
    assert len(set(features)) == len(features), "a feature listed twice"


def test_every_cell_cites_a_source(section: Section) -> None:
    missing = [
        (row.feature, column)
        for row in section.rows
        for column in COLUMNS
        if not cited(row.cells[column])
    ]
    assert missing == []


def test_every_cell_ends_with_its_citation(section: Section) -> None:
    # "yes [3] but ..." would leave the qualifier unsourced.
    for row in section.rows:
        for column in COLUMNS:
            cell = row.cells[column]
            assert ENDS_CITED.search(cell), (row.feature, column, cell)


def test_each_release_in_a_cell_has_its_own_citation(section: Section) -> None:
    # A cell that speaks of two releases (or a release and the main branch)
    # cites a source for each: every clause naming one ends with a marker.
    for row in section.rows:
        for column in PEERS:
            for clause in row.cells[column].split(";"):
                clause = clause.strip()
                if RELEASE_CLAUSE.match(clause):
                    assert ENDS_CITED.search(clause), (row.feature, column, clause)


def test_every_cited_source_is_listed_and_every_listed_one_cited(
    section: Section,
) -> None:
    used = {
        n for row in section.rows for cell in row.cells.values() for n in cited(cell)
    }
    listed = set(section.sources)
    assert used - listed == set(), "cited but not listed"
    assert listed - used == set(), "listed but never cited"


def test_sources_are_numbered_from_one_without_gaps(section: Section) -> None:
    assert section.order == list(range(1, len(section.order) + 1))


def test_our_column_cites_tests_and_the_peers_cite_releases_or_files(
    section: Section,
) -> None:
    ours = {n for row in section.rows for n in cited(row.cells["amqp-client"])}
    theirs = {n for row in section.rows for c in PEERS for n in cited(row.cells[c])}
    assert ours.isdisjoint(theirs), "a source shared by our column and a peer's"
    for number in ours:
        assert TEST_REF.search(section.sources[number]), section.sources[number]
    for number in theirs:
        text = section.sources[number]
        assert TEST_REF.search(text) is None, text
        # A release ("1.4.4", "v1.14.0") or a file ("`pika/spec.py`").
        assert re.search(r"\bv?\d+\.\d+\.\d+\b|`[\w./-]+\.\w+`", text), text


def test_main_branch_claims_say_they_are_unreleased(section: Section) -> None:
    for row in section.rows:
        for column in PEERS:
            for clause in row.cells[column].split(";"):
                if "main branch" in clause or clause.strip().startswith("main "):
                    assert "not released" in clause or "on main" in clause, (
                        row.feature,
                        column,
                        clause,
                    )


def test_the_cited_tests_exist(section: Section) -> None:
    ours = {n for row in section.rows for n in cited(row.cells["amqp-client"])}
    for number in sorted(ours):
        for path, name in TEST_REF.findall(section.sources[number]):
            source = ROOT / path
            assert source.is_file(), f"[{number}] {path} is missing"
            pattern = rf"^(async )?def {name}\("
            text = source.read_text(encoding="utf-8")
            assert re.search(pattern, text, re.MULTILINE), f"[{number}] {path}::{name}"


def test_the_parser_rejects_what_the_checks_catch() -> None:
    good = "\n".join(
        [
            HEADING,
            "",
            "| | amqp-client | pika | aio-pika | amqp091-go |",
            "|---|---|---|---|---|",
            "| x | yes [1] | no [2] | no [2] | no [2] |",
            "",
            "1. `tests/unit/test_readme_comparison.py::test_the_table_has_rows`.",
            "2. pika 1.4.4, `pika/spec.py`.",
        ]
    )
    section = parse(good)
    assert [row.cells["pika"] for row in section.rows] == ["no [2]"]
    assert section.sources.keys() == {1, 2}
    unsourced = good.replace("| no [2] | no [2] | no [2] |", "| no | no [2] | no [2] |")
    assert not cited(parse(unsourced).rows[0].cells["pika"])
    with pytest.raises(AssertionError):
        parse(good.replace("| amqp091-go |", "| streadway |"))
