"""The README's shell commands and tools/check_readme.py's table agree: a command added to the README without
saying how it is checked, or a checked command the README dropped, fails here on every `make test`
(`make check-readme` then runs or parses each one)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import check_readme  # noqa: E402


def test_every_readme_command_is_in_the_table_and_nothing_else():
    commands = check_readme.readme_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    assert "make run" in commands
    assert check_readme.table_problems(commands) == []


def test_comments_continuations_and_output_lines():
    text = ("```\nmake run   # the sample\nnewsbeam run --input 'a#b' \\\n    --output out/\n"
            "newsbeam summary (1.0s): read 1\n```\n```json\n{\"make\": 1}\n```\n")
    assert check_readme.readme_commands(text) == ["make run", "newsbeam run --input 'a#b' --output out/"]


def test_parse_only_refuses_what_newsbeam_would_refuse():
    check_readme.parse_only("newsbeam run --feeds https://example.org/rss.xml --output out/")
    for bad in ("newsbeam run --input x --output o --dry-run",  # an option of another command
                "newsbeam eval ner --gold x --format conll --no-such-option",
                "newsbeam train ner --config configs/missing.yaml"):
        try:
            check_readme.parse_only(bad)
        except ValueError:
            continue
        raise AssertionError(f"not refused: {bad}")


def test_make_lines_are_checked_through_the_makefile():
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "check_readme.py"), "--list"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert check_readme._make_commands('make run-feeds FEEDS="https://example.org/rss.xml"')[0][:3] == [
        "run", "--feeds", "https://example.org/rss.xml"]
