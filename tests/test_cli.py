"""The command line through the installed `newsbeam` entry point, in a subprocess, as a user (or cron) runs it:
help, usage errors before anything runs, directories as input, dates that name their flag, the summary."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, read_output
from tests.terminal import run_on_a_terminal

GROUPS = {"run": ["input", "output", "models", "dedup", "feeds", "pages", "streaming", "runner"],
          "backfill": ["backfill", "input", "output", "models", "dedup", "runner"]}


def newsbeam_exe() -> str:
    exe = Path(sys.executable).parent / "newsbeam"
    found = str(exe) if exe.exists() else shutil.which("newsbeam")
    assert found, "the `newsbeam` entry point is not installed (make install)"
    return found


def newsbeam(*args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([newsbeam_exe(), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def options_of(command: str) -> set[str]:
    """Every option of the command, from the option table (tests/test_cli_modes.py checks the table is exactly
    what the parser knows, through argparse's public API)."""
    from pipeline.arguments import options_for

    return {o.flag for o in options_for(command)}


@pytest.mark.parametrize("command", ["run", "backfill"])
def test_subcommand_help_lists_every_option_grouped_with_defaults(command):
    proc = newsbeam(command, "--help")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for group in GROUPS[command]:
        assert re.search(rf"^{group}:$", out, re.M), f"group {group!r} missing from `newsbeam {command} --help`"
    missing = [o for o in options_of(command) if o not in out]
    assert not missing, f"options not in --help: {missing}"
    assert "(default: 0.8)" in out and "(default: 32)" in out


def test_module_entry_points_print_the_full_help():
    for module in ("pipeline.run", "pipeline.backfill"):
        proc = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0 and "--dedup-threshold" in proc.stdout, (module, proc.stdout[:300])


def test_no_arguments_prints_usage_and_exits_2():
    proc = newsbeam()
    assert proc.returncode == 2 and proc.stderr.startswith("usage: newsbeam")


def test_version():
    proc = newsbeam("--version")
    assert proc.returncode == 0 and re.fullmatch(r"newsbeam \d+\.\d+\.\d+\S*\n", proc.stdout)


@pytest.mark.parametrize("command", ["eval", "report", "train"])
def test_other_subcommands_have_help(command):
    proc = newsbeam(command, "--help")
    assert proc.returncode == 0 and proc.stdout.startswith("usage: newsbeam"), proc.stdout[:200] + proc.stderr


def test_misspelt_options_are_an_error_before_anything_runs(tmp_path):
    out = tmp_path / "out"
    proc = newsbeam("run", "--input", "seeds/*.txt", "--output", str(out), "--target", "Armenia",
                    "--dedup-treshold", "0.5")
    assert proc.returncode == 2
    assert "did you mean --targets?" in proc.stderr and "did you mean --dedup-threshold?" in proc.stderr
    assert not out.exists()  # nothing ran


def test_beam_options_still_pass_through(tmp_path):
    seed = tmp_path / "in" / "a.txt"
    seed.parent.mkdir()
    seed.write_text("date 2020-12-13 Nothing in particular happened in the town today.\n", encoding="utf-8")
    proc = newsbeam("run", "--input", str(seed), "--output", str(tmp_path / "out"), "--skip-models",
                    "--direct_running_mode", "in_memory", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "read 1, written 1" in proc.stdout


def test_bad_date_names_its_flag(tmp_path):
    proc = newsbeam("backfill", "--since", "2020-13-01", "--until", "2020-12-31", "--input", "seeds/*.txt",
                    "--output", str(tmp_path / "out"))
    assert proc.returncode == 2 and "--since 2020-13-01: month must be in 1..12" in proc.stderr


def test_backfill_dry_run_over_a_directory_says_why_inputs_are_unreadable(tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(ROOT / "seeds", folder)
    (folder / "broken.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00 binary")
    proc = newsbeam("backfill", "--dry-run", "--input", str(folder), "--since", "2020-12-01", "--until",
                    "2020-12-31", "--output", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "2020-12-13  2" in proc.stdout  # the sample article and the German seed
    assert re.search(r"unreadable.*\n.*binary", proc.stdout, re.I), proc.stdout


def test_a_directory_input_reads_the_files_under_it(tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(ROOT / "seeds" / "sample_article.txt", folder / "sub")
    (folder / "bad.txt").write_text("no date line here\n", encoding="utf-8")
    out = tmp_path / "out"
    proc = newsbeam("run", "--input", str(folder), "--output", str(out), "--skip-models", "--quiet")
    assert proc.returncode == 0, proc.stderr
    got = read_output(out)
    assert [Path(a["input_ref"]).name for a in got["articles"]] == ["sample_article.txt"]
    assert len(got["dead"]) == 1
    # the summary names the top dead-letter reasons with counts; internal counters only under --verbose
    assert re.search(r"1 × first line must be `date YYYY-MM-DD`", proc.stdout), proc.stdout
    assert "dedup_index_shards_written" not in proc.stdout


def test_verbose_lists_the_internal_counters(tmp_path):
    seed = tmp_path / "a.txt"
    seed.write_text("date 2020-12-13 A quiet day in the town, said the mayor.\n", encoding="utf-8")
    proc = newsbeam("run", "--input", str(seed), "--output", str(tmp_path / "out"), "--skip-models", "--verbose")
    assert proc.returncode == 0, proc.stderr
    assert "dedup_index_shards_written" in proc.stdout


def test_progress_only_on_a_terminal(tmp_path):
    """Captured stderr is not a terminal: no bar, no carriage returns in a cron log."""
    seed = tmp_path / "a.txt"
    seed.write_text("date 2020-12-13 A quiet day in the town, said the mayor.\n", encoding="utf-8")
    proc = newsbeam("run", "--input", str(seed), "--output", str(tmp_path / "out"), "--skip-models")
    assert proc.returncode == 0 and "\r" not in proc.stderr and "records/s" not in proc.stderr


def _run_on_a_terminal(tmp_path, *extra: str) -> str:
    """`newsbeam run` over the seeds with its stderr on a real pseudo-terminal; what the screen and stdout got."""
    folder = tmp_path / "in"
    shutil.copytree(ROOT / "seeds", folder)
    code, stdout, screen = run_on_a_terminal([newsbeam_exe(), "run", "--input", str(folder), "--output",
                                              str(tmp_path / "out"), "--skip-models", *extra], columns=160)
    assert code == 0, stdout + screen
    return screen + stdout


def test_progress_bar_on_a_terminal(tmp_path):
    """In a real pseudo-terminal the live bar shows records read, each stage's count, written, duplicates and
    dead letters."""
    screen = _run_on_a_terminal(tmp_path)
    assert "newsbeam" in screen and "records/s" in screen, screen[-2000:]
    assert re.search(r"read \d+; language \d+, NER \d+, stance \d+; written \d+, duplicates \d+, dead letters \d+",
                     screen), screen[-2000:]
    assert "every record accounted for" in screen


def test_readme_cli_section_lists_exactly_the_options_of_run_and_backfill():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## The CLI"):readme.index("### Feeds")]
    documented = set(re.findall(r"`(--[a-z][a-z0-9_-]*)", section)) - {"--direct_", "--direct_running_mode"}
    # (those two are Beam's own options, named as pass-through examples)
    known = options_of("run") | options_of("backfill")
    assert not known - documented, f"options missing from README's CLI section: {sorted(known - documented)}"
    assert not documented - known, f"README documents options that do not exist: {sorted(documented - known)}"


def test_quiet_turns_the_bar_off_on_a_terminal(tmp_path):
    screen = _run_on_a_terminal(tmp_path, "--quiet")
    assert "records/s" not in screen and "every record accounted for" in screen
