"""docs/faults.md: every row names a test that exists, unless it is marked open."""

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEST_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::([\w:]+)`")


def table_rows():
    lines = (ROOT / "docs" / "faults.md").read_text().splitlines()
    return [line for line in lines if line.startswith("| ") and not line.startswith("| Fault ")]


def defined_names(path):
    tree = ast.parse((ROOT / path).read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def test_every_row_names_a_test_or_is_marked_open():
    rows = table_rows()
    assert len(rows) >= 30
    for row in rows:
        assert TEST_REFERENCE.search(row) or "**open**" in row, row


def test_every_named_test_exists():
    references = {match for row in table_rows() for match in TEST_REFERENCE.findall(row)}
    assert references
    for path, name in references:
        missing = [part for part in name.split("::") if part not in defined_names(path)]
        assert not missing, f"{path}::{name}"
