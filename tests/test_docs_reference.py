"""Docs and code comments say what is true now: no work diary, no issue numbers, no tools of the machine the
project was developed on. History lives in git. Scans README.md, NOTICE, docs/*.md and the comments and strings of
the code (Python through tokenize, so a URL fragment like `feed.xml#2` in code is not read as an issue number)."""
from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

from tests.conftest import ROOT

CODE_DIRS = ("pipeline", "transforms", "modeling", "newsbeam", "schemas", "bench", "tools", "tests", "research",
             "configs", "deploy")
CODE_FILES = ("Makefile", "setup.py")
SKIP_PARTS = {"__pycache__", "data", "weights", "templates"}  # fixtures, model files, report CSS colours
TEXT_SUFFIXES = {".py", ".yaml", ".yml", ".sh", ".cfg", ".toml", ".ini", ".txt", ""}

# (name, pattern). Case-insensitive.
ISSUE = [
    ("issue number", r"\b(?:issue|pr|pull request|ticket)s? ?#?\d+\b"),
    ("issue number", r"(?<![\w&/.#:=\-])#\d{1,4}\b(?![\w;])"),
    ("issue item", r"\bitems? \d+(?:, \d+)*(?: and \d+)?\b(?! (?:articles?|records?|entries|lines?|rows?|bytes?))"),
]
DIARY = [
    ("session diary", r"\bthis session\b|\b(?:last|previous|next|earlier|later) session\b|\bsessions? \d+\b"),
    ("session diary", r"\b(?:stage|round|phase|period|part) \d+ of (?:the )?(?:work|session|this work)\b"),
    ("session diary", r"\blast night\b|\bthis (?:morning|afternoon|evening|week)\b|\bearlier today\b"),
    ("session diary", r"\bwe (?:now|then|just|tried|decided|fixed|found|changed)\b"),
    ("session diary", r"\b(?:after|before) (?:the|this) fix\b|\buntil now\b|\bin progress\)"),
    ("session diary", r"\byesterday\b"),
]
MACHINE = [
    ("machine tool", r"\bfarm-[a-z]+\b|\bfresh-clone-check\b|shared/tools\b"),
    ("machine tool", r"\bbefore-stop\b|\bstop hook\b|\bworktrees?\b|\bhelper (?:engineer|session|agent)s?\b"),
]
PATTERNS = [(name, re.compile(rx, re.IGNORECASE)) for name, rx in ISSUE + DIARY + MACHINE]

# `yesterday` is a keyword of backfill (`--since yesterday`, `make backfill-yesterday`): allowed on a line that is
# about dates or backfills, never as narrative.
YESTERDAY_OK = re.compile(r"[`'\"]yesterday\b|backfill|nightly|since|until|UTC|\bdays?\b|\bdate\b|resolve_day|today",
                          re.IGNORECASE)


def doc_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "NOTICE", *sorted((ROOT / "docs").glob("*.md"))]


def code_files() -> list[Path]:
    found = [ROOT / name for name in CODE_FILES if (ROOT / name).exists()]
    for top in CODE_DIRS:
        for path in sorted((ROOT / top).rglob("*")):
            rel = path.relative_to(ROOT)
            if (path.is_file() and path.suffix in TEXT_SUFFIXES and not SKIP_PARTS & set(rel.parts)
                    and path.name != Path(__file__).name):
                found.append(path)
    return found


def python_text(source: str) -> list[tuple[int, str, str]]:
    """(line number, text, source line) of every comment and string literal: what a reader of the code reads as
    prose. The source line is the context an allowance is judged on (a string next to its call)."""
    lines = source.splitlines()
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.COMMENT, tokenize.STRING) or tok.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
            for i, line in enumerate(tok.string.splitlines()):
                out.append((tok.start[0] + i, line, lines[tok.start[0] + i - 1]))
    return out


def prose(path: Path) -> list[tuple[int, str, str]]:
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".py":
        return python_text(text)
    return [(i, line, line) for i, line in enumerate(text.splitlines(), 1)]


def findings(path: Path, lines: list[tuple[int, str, str]]) -> list[str]:
    out = []
    for number, line, context in lines:
        for name, rx in PATTERNS:
            for m in rx.finditer(line):
                if m.group(0).lower() == "yesterday" and YESTERDAY_OK.search(context):
                    continue
                out.append(f"{path.relative_to(ROOT)}:{number}: {name}: {m.group(0)!r} in {line.strip()[:120]!r}")
    return out


def test_the_scan_finds_what_it_must():
    """The patterns catch the phrasings they are for, and pass the legitimate uses this project has."""
    bad = ["fixed in issue 35", "see #34.", "as in session 12", "stage 3 of work", "measured this session",
           "run with farm-bench", "../shared/tools/check", "the before-stop hook", "in the helper's worktree",
           "Item 3 is reworked separately", "the bench ran yesterday"]
    good = ["make backfill-yesterday INPUT=...", "`--since yesterday` resolved in UTC", "seeds/feed.xml#2",
            "&#55296; is a lone surrogate", "requests.Session per thread", "@pytest.fixture(scope=\"session\")",
            "stage 2 of the NER recipe", "one request at a time (a helper thread)"]
    assert all(findings(ROOT / "x", [(1, line, line)]) for line in bad), [b for b in bad if not findings(ROOT / "x", [(1, b, b)])]
    assert not [f for line in good for f in findings(ROOT / "x", [(1, line, line)])]


@pytest.mark.parametrize("kind", ["docs", "code"])
def test_no_diary_issue_numbers_or_machine_tools(kind):
    files = doc_files() if kind == "docs" else code_files()
    assert len(files) > (5 if kind == "docs" else 50), files
    problems = [f for path in files for f in findings(path, prose(path))]
    assert not problems, "say what is true now (history lives in git):\n" + "\n".join(problems)
