"""The repository is self-contained: nothing its code, tests, benchmarks or build run reads a path
outside it, and every `docs/design.md §n` citation names a section that exists.

A fresh `git clone` with nothing beside it must pass `make test`; a path that escapes the clone (the
team's `shared` folder next to it, this machine's `/work` tree, `Path(__file__).parents[N]` past the
root) only works on the machine where it was written. This file spells those paths in pieces, so a
plain `grep` for them over the repository finds nothing.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCANNED = [
    *("tests", "benchmarks", "shared/segops", "functions", "infra", "sdk", ".ci", "terraform", "docs"),
    *("Makefile", "README.md", ".gitignore", "pyproject.toml"),
]
SKIPPED_PARTS = {"node_modules", "dist", "build", "__pycache__"}
TEXT_SUFFIXES = {".py", ".ts", ".js", ".mjs", ".json", ".toml", ".cfg", ".sh", ".tf", ".md", ".txt", ""}

# Literal escapes, whatever the language: the team's shared folder beside the clone, or absolute
# paths of the machine the code was written on.
_LITERAL = re.compile(
    r"""\.\./shared\b                          # the shared folder beside the clone
      | /work/                                  # this machine's workspace
      | (["'])\.\.\1\s*,\s*(["'])shared\2       # join(..., '..', 'shared')
      | \b(?:REPO_ROOT|REPO|ROOT)\b\s*(?:,|/)\s*(["'])\.\.\3   # join(REPO_ROOT, '..') / REPO / ".."
    """,
    re.VERBOSE,
)
# `Path(__file__)` followed by `.resolve()`, `.absolute()`, `.parent` or `.parents[N]` steps.
_FILE_ANCESTOR = re.compile(r"Path\(__file__\)((?:\s*\.\s*(?:resolve\(\)|absolute\(\)|parent\b|parents\[\d+\]))+)")
_STEP = re.compile(r"parent\b|parents\[(\d+)\]")
# A `".."` joined onto a path in Python (`/ ".."`): climbing out of an anchored folder.
_PY_DOTDOT_JOIN = re.compile(r"""/\s*(["'])\.\.\1""")


def _levels_up(steps: str) -> int:
    """How far above the file's folder `Path(__file__)<steps>` lands (0 = the folder itself)."""
    levels = -1  # Path(__file__) is the file; `.parent` (or parents[0]) is its folder
    for match in _STEP.finditer(steps):
        levels += 1 if match.group(1) is None else int(match.group(1)) + 1
    return levels


def escapes(relative: str, text: str) -> list[str]:
    """Each way `text` (the file at repo-relative `relative`) reaches outside the repository."""
    found = [f"{relative}: {m.group(0)!r}" for m in _LITERAL.finditer(text)]
    if relative.endswith(".py"):
        depth = len(Path(relative).parts) - 1  # folders between the repository root and the file
        for match in _FILE_ANCESTOR.finditer(text):
            if _levels_up(match.group(1)) > depth:
                found.append(f"{relative}: {match.group(0)!r} climbs above the repository root")
        found += [f"{relative}: {m.group(0)!r}" for m in _PY_DOTDOT_JOIN.finditer(text)]
    if Path(relative).name == "Makefile":
        found += [f"{relative}: {line.strip()!r}" for line in text.splitlines() if "../" in line]
    return found


def _tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *SCANNED],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [
        f
        for f in listed
        if not SKIPPED_PARTS & set(Path(f).parts)
        and Path(f).suffix in TEXT_SUFFIXES
        and f != "tests/unit/test_repository_boundary.py"  # its own patterns and examples
        and (REPO / f).is_file()
    ]


def test_the_scan_covers_code_tests_benchmarks_and_build() -> None:
    files = _tracked_files()
    for prefix in ("tests/", "benchmarks/", "shared/segops/", "functions/", "infra/", "sdk/", ".ci/"):
        assert any(f.startswith(prefix) for f in files), prefix
    assert "Makefile" in files


def test_nothing_reads_a_path_outside_the_repository() -> None:
    problems = [p for f in _tracked_files() for p in escapes(f, (REPO / f).read_text(errors="replace"))]
    assert problems == []


SHARED = ".." + "/shared"  # in pieces: see the module docstring


@pytest.mark.parametrize(
    ("relative", "text"),
    [
        ("tests/support/api_contract.py", 'API_MD = Path(__file__).resolve().parents[2] / ".." / "shared" / "x.md"'),
        ("tests/contract/test_x.py", 'FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"'),
        ("tests/unit/shopify/test_x.py", "ROOT = Path(__file__).parent.parent.parent.parent.parent"),
        ("benchmarks/bench_x.py", f'open("/work{SHARED[2:]}/fixtures/shopify/index.json")'),
        ("sdk/typescript/test/support/x.ts", "join(REPO_ROOT, '..', 'shared', 'handbook', 'q.txt')"),
        ("sdk/typescript/test/support/x.ts", f"const P = '{SHARED}/handbook/API.md';"),
        ("Makefile", "test:\n\tcat ../notes.txt"),
    ],
)
def test_each_kind_of_escape_is_caught(relative: str, text: str) -> None:
    assert escapes(relative, text) != []


@pytest.mark.parametrize(
    ("relative", "text"),
    [
        ("tests/support/fixtures.py", 'FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures"'),
        ("tests/contract/test_x.py", 'REPO = Path(__file__).resolve().parents[2] / "functions"'),
        ("infra/package.py", "REPO_ROOT = Path(__file__).resolve().parents[1]"),
        ("shared/segops/manifest.py", "REPO_ROOT = Path(__file__).resolve().parents[2]"),
        ("tests/contract/test_store.py", 'keys = ["../etc/passwd", "a/../b"]'),
    ],
)
def test_paths_inside_the_repository_pass(relative: str, text: str) -> None:
    assert escapes(relative, text) == []


_CITATION = re.compile(r"docs/design\.md §(\d+)")


def test_every_design_citation_names_a_section_of_docs_design_md() -> None:
    sections = set(re.findall(r"^## (\d+)\. ", (REPO / "docs" / "design.md").read_text(), re.MULTILINE))
    assert {"5", "6", "7"} <= sections
    cited = {
        (f, n)
        for f in [*_tracked_files(), *(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md")), "README.md"]
        for n in _CITATION.findall((REPO / f).read_text(errors="replace"))
    }
    assert cited, "no citation found: the scan is broken"
    assert sorted((f, n) for f, n in cited if n not in sections) == []
    # and the old, unresolvable form is gone
    uncited = [f for f in _tracked_files() if re.search(r"\bDESIGN §", (REPO / f).read_text(errors="replace"))]
    assert uncited == []
