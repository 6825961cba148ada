"""The documents name only files, commands, flags and links the repository has."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from helpers import ROOT
from salal_core.cli.main import build_parser as core_parser
from salal_tui.__main__ import build_parser as tui_parser

REPO_DIRS = ("benchmarks/", "tests/", "salal_core/", "salal_tui/", ".ci/", "scripts/", "docs/")
TOP_FILES = ("README.md", "BENCHMARKS.md", "DESIGN.md", "STYLE.md", "pyproject.toml")
FENCE = re.compile(r"\s*```")
SPAN = re.compile(r"`([^`]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
INVOCATION = re.compile(r"(salal-core|salal-tui|salal_core\.cli)(?![\w.-])([^|;&#\n]*)")
FLAG = re.compile(r"--[a-z][a-z0-9-]*")


def documents() -> list[Path]:
    """Every document a reader is pointed to: the README, the benchmarks and their history,
    and each page under docs/."""
    fixed = [ROOT / "README.md", ROOT / "BENCHMARKS.md", ROOT / "benchmarks" / "history.md"]
    return fixed + sorted((ROOT / "docs").glob("*.md"))


def named_files(text: str) -> set[str]:
    """Paths in the text that point into the repository: under one of its folders, or one of
    its top-level documents."""
    words = set(re.findall(r"[\w./-]+\.(?:py|sh|md|toml|tcss|svg)\b", text))
    return {
        w.removeprefix("./")
        for w in words
        if w.removeprefix("./").startswith(REPO_DIRS) or w in TOP_FILES
    }


def unfenced(text: str) -> tuple[list[str], str]:
    """A document's fenced blocks, each with its backslash-continued lines joined, and the text
    outside them."""
    blocks: list[str] = []
    outside: list[str] = []
    block: list[str] | None = None
    for line in text.split("\n"):
        if FENCE.match(line):
            if block is None:
                block = []
            else:
                blocks.append("\n".join(block).replace("\\\n", " "))
                block = None
        elif block is not None:
            block.append(line)
        else:
            outside.append(line)
    return blocks, "\n".join(outside)


def split_code(text: str) -> tuple[list[str], str]:
    """The code of a document (each fenced block and each inline span) and its prose, with every
    span replaced by the word `code`."""
    blocks, outside = unfenced(text)
    spans = [span.replace("\n", " ") for span in SPAN.findall(outside)]
    return blocks + spans, SPAN.sub("code", outside)


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    """The real parsers, by the command line that reaches them: `salal-tui`, `salal-core` and
    each `salal-core SUBCOMMAND`."""
    core = core_parser()
    sub = next(a for a in core._actions if isinstance(a, argparse._SubParsersAction))
    named = {f"salal-core {name}": parser for name, parser in sub.choices.items()}
    return {"salal-tui": tui_parser(), "salal-core": core, **named}


def bad_commands(code: list[str], lone_flags: bool) -> list[str]:
    """Each `salal-core`/`salal-tui` command line in the code whose subcommand or flag the real
    parsers lack; with lone_flags, also each flag of a span that starts with one (`--lr 0.05`),
    which must belong to some salal parser."""
    parsers = command_parsers()
    options = {name: set(p._option_string_actions) for name, p in parsers.items()}
    every_option = set().union(*options.values())
    bad = []
    for piece in code:
        for match in INVOCATION.finditer(piece):
            program = "salal-core" if match.group(1) == "salal_core.cli" else match.group(1)
            args = match.group(2)
            known = set(options[program])
            word = re.match(r"\s*([a-z][\w-]*)", args)
            if program == "salal-core" and word:
                if f"salal-core {word.group(1)}" not in parsers:
                    bad.append(f"salal-core {word.group(1)}")
                    continue
                known |= options[f"salal-core {word.group(1)}"]
            bad += [f"{program} {flag}" for flag in FLAG.findall(args) if flag not in known]
        if lone_flags and piece.startswith("--"):
            bad += [flag for flag in FLAG.findall(piece) if flag not in every_option]
    return bad


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to
    hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a document's headings, a repeated one numbered as GitHub numbers it."""
    _, outside = unfenced(path.read_text())
    seen: dict[str, int] = {}
    found = set()
    for line in outside.split("\n"):
        heading = re.match(r"#{1,6} (.+)", line)
        if heading:
            base = slug(heading.group(1))
            found.add(f"{base}-{seen[base]}" if base in seen else base)
            seen[base] = seen.get(base, 0) + 1
    return found


def broken_links(document: Path, text: str) -> list[str]:
    """Each relative link of the text, read as if it were the document's, whose file does not
    exist or whose anchor no heading of that file makes."""
    _, prose = split_code(text)
    broken = []
    for target in LINK.findall(prose):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (document.parent / path).resolve() if path else document
        if not file.exists() or (anchor and file.suffix == ".md" and anchor not in anchors(file)):
            broken.append(target)
    return broken


@pytest.mark.parametrize("document", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_a_document_names_exists(document: Path) -> None:
    named = named_files(document.read_text())
    missing = sorted(n for n in named if not (ROOT / n).exists())
    assert not missing, f"{document.name} names {missing}"


@pytest.mark.parametrize("document", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_and_flag_a_document_names_exists(document: Path) -> None:
    code, _ = split_code(document.read_text())
    # The benchmarks' own scripts take flags of their own (`--plans budgets`): there, only
    # flags on a salal command line are checked.
    lone_flags = document.parent.name == "docs" or document.name == "README.md"
    bad = bad_commands(code, lone_flags)
    assert not bad, f"{document.name} names {sorted(set(bad))}"


@pytest.mark.parametrize("document", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_a_document_makes_reaches_a_file_and_heading(document: Path) -> None:
    broken = broken_links(document, document.read_text())
    assert not broken, f"{document.name} links to {broken}"


def test_every_page_in_docs_is_linked_from_the_readme() -> None:
    readme = ROOT / "README.md"
    _, prose = split_code(readme.read_text())
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in LINK.findall(prose)}
    unlinked = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked]
    assert not unlinked, f"README.md links to no {unlinked}"


def test_the_check_finds_a_missing_file() -> None:
    assert named_files("see DESIGN.md and `benchmarks/nope.py`, not runs/x.json") == {
        "DESIGN.md",
        "benchmarks/nope.py",
    }


def test_the_check_finds_an_unknown_command_and_flag() -> None:
    code, _ = split_code(
        "Run `salal-core frobnicate RUN_DIR` or `salal-tui --resume R --no-such-flag`, then\n"
        "```bash\nsalal-core export RUN_DIR \\\n    --format csv --shiny\n"
        "python -m salal_core.cli run --preset fast --sparkle\n```\n"
        "and tune `--lr 0.05 --wobble`; `salal-core run --budget 0.6` is fine."
    )
    assert sorted(bad_commands(code, lone_flags=True)) == [
        "--wobble",
        "salal-core --shiny",
        "salal-core --sparkle",
        "salal-core frobnicate",
        "salal-tui --no-such-flag",
    ]
    # A flag of one subcommand is not another's: `--overlap` is serve's, not export's.
    assert bad_commands(["salal-core export R --overlap 2"], lone_flags=False) == [
        "salal-core --overlap"
    ]


def test_the_check_finds_a_missing_page_and_heading() -> None:
    text = (
        "[ok](BENCHMARKS.md#todays-figures-against-their-targets), [gone](docs/nope.md), "
        "[no heading](BENCHMARKS.md#no-such-section), [web](https://example.org/x.md), "
        "`[in code](nope.md)`"
    )
    assert broken_links(ROOT / "README.md", text) == [
        "docs/nope.md",
        "BENCHMARKS.md#no-such-section",
    ]


def test_anchors_follow_githubs_rules() -> None:
    assert slug("Selection on a 40,000-image pool (CPU)") == "selection-on-a-40000-image-pool-cpu"
    assert slug("Each speed switch on its own (`bench --ablate`)") == (
        "each-speed-switch-on-its-own-bench---ablate"
    )
    assert slug("Keys and the app's time per label") == "keys-and-the-apps-time-per-label"


def test_the_readme_gives_the_test_command_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    command = next(line for line in ci.split("\n") if line.startswith("python -m pytest"))
    code, _ = split_code((ROOT / "README.md").read_text())
    lines = {line.partition(" #")[0].strip() for piece in code for line in piece.split("\n")}
    assert command in lines, command
