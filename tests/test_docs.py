"""The documents name only files the repository has."""

from __future__ import annotations

import re

from helpers import ROOT

REPO_DIRS = ("benchmarks/", "tests/", "salal_core/", "salal_tui/", ".ci/", "scripts/")
TOP_FILES = ("README.md", "BENCHMARKS.md", "DESIGN.md", "STYLE.md", "pyproject.toml")


def named_files(text: str) -> set[str]:
    """Paths in the text that point into the repository: under one of its folders, or one of
    its top-level documents."""
    words = set(re.findall(r"[\w./-]+\.(?:py|sh|md|toml|tcss|svg)\b", text))
    return {
        w.removeprefix("./")
        for w in words
        if w.removeprefix("./").startswith(REPO_DIRS) or w in TOP_FILES
    }


def test_every_file_the_readme_and_benchmarks_name_exists() -> None:
    for document in ("README.md", "BENCHMARKS.md"):
        named = named_files((ROOT / document).read_text())
        assert named, document
        missing = sorted(n for n in named if not (ROOT / n).exists())
        assert not missing, f"{document} names {missing}"


def test_the_check_finds_a_missing_file() -> None:
    assert named_files("see DESIGN.md and `benchmarks/nope.py`, not runs/x.json") == {
        "DESIGN.md",
        "benchmarks/nope.py",
    }
