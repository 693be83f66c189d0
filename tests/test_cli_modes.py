"""Every option of `newsbeam run|backfill` is accepted where it acts and refused elsewhere (exit 2, naming the mode
it needs) before any Beam work; exit codes tell cron a run that wrote nothing; `--version` and `--help` answer
without importing Beam or torch, and the version is written in one place."""
from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.arguments import (OPTIONS, PIPELINE_COMMANDS, Option, UsageError, options_for, parse_pipeline_args,
                                pipeline_parser)
from tests.conftest import ROOT
from tests.test_cli import newsbeam as cli

HEAVY = ("apache_beam", "torch", "transformers", "pandas", "pipeline.graph")


def sample(option: Option) -> list[str]:
    """`option` with a value its type accepts (none for a switch)."""
    kw = option.kwargs
    if kw.get("action") == "store_true":
        return [option.flag]
    if "choices" in kw:
        value = kw["choices"][-1]
    elif kw.get("type") is int:
        value = "2"
    elif kw.get("type") is float:
        value = "2.5"
    elif option.flag in ("--since", "--until"):
        value = "2020-12-01"
    else:
        value = "x"
    return [option.flag, value]


def context(option: Option, command: str) -> list[str]:
    """The other options `option` needs to act in `command`: --streaming (+ a feed), one of its `needs`, the
    Dataflow runner."""
    argv: list[str] = []
    if option.where.streaming:
        argv += ["--streaming", "--feeds", "http://127.0.0.1:1/x.xml"]
    if option.where.needs and not set(option.where.needs) & set(argv):
        argv += sample(next(o for o in OPTIONS if o.flag == option.where.needs[0]))
    if option.where.dataflow:
        argv += ["--runner", "DataflowRunner"]
    return argv


CASES = [(command, o) for command in PIPELINE_COMMANDS for o in OPTIONS]


def test_the_table_is_every_option_the_parsers_know():
    """The mode table and the parser agree, read through argparse's public API: parse_args([]) names every dest,
    each flag sets its own, and each command's --help lists exactly that command's options."""
    for command in PIPELINE_COMMANDS:
        parser = pipeline_parser(command)
        assert set(vars(parser.parse_args([]))) == {o.dest for o in OPTIONS}, command
        presence = pipeline_parser(command, presence=True)
        for o in OPTIONS:
            assert set(vars(presence.parse_args(sample(o)))) == {o.dest}, o.flag
        listed = set(re.findall(r"^ {2}(--[\w-]+)", parser.format_help(), re.M))  # option lines (and a few
        mine = {o.flag for o in options_for(command)}                            # group descriptions' words)
        assert mine <= listed and not listed & ({o.flag for o in OPTIONS} - mine), command


@pytest.mark.parametrize("command, option", CASES, ids=[f"{c}{o.flag}" for c, o in CASES])
def test_each_option_is_accepted_where_it_acts_and_refused_elsewhere(command, option):
    where = option.where
    argv = [*context(option, command), *sample(option)]
    if command not in where.commands:
        expected = f"{option.flag}: only for newsbeam {' and '.join(sorted(where.commands))}"
        with pytest.raises(UsageError, match=re.escape(expected)):
            parse_pipeline_args(command, argv)
        return
    parse_pipeline_args(command, argv)  # accepted where it acts
    if where.streaming is True:
        with pytest.raises(UsageError, match=f"{option.flag}: only with --streaming"):
            parse_pipeline_args(command, sample(option))
    if where.streaming is False and command == "run":
        with pytest.raises(UsageError, match=f"{option.flag}: not with --streaming"):
            parse_pipeline_args(command, ["--streaming", *argv])
    if where.needs:
        with pytest.raises(UsageError, match=re.escape(f"{option.flag}: only with {' or '.join(where.needs)}")):
            parse_pipeline_args(command, sample(option))
    for other in where.not_with:
        with pytest.raises(UsageError, match=f"{option.flag}: not with {other}"):
            parse_pipeline_args(command, [*argv, other])
    if where.dataflow:
        with pytest.raises(UsageError, match=f"{option.flag}: only with --runner DataflowRunner"):
            parse_pipeline_args(command, sample(option))


def _child(code: str) -> dict:
    """Run `code` in a fresh interpreter (from the repository) and return the JSON it prints last."""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cli_in_child(*args: str) -> dict:
    """pipeline.cli.main(args) in a fresh interpreter: its exit code, stderr, and which heavy modules it loaded."""
    return _child(f"""
import contextlib, io, json, sys
from pipeline.cli import main
err = io.StringIO()
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
    try:
        rc = main({list(args)!r})
    except SystemExit as exc:
        rc = exc.code
print(json.dumps({{"rc": rc, "stderr": err.getvalue(),
                  "loaded": [m for m in {HEAVY!r} if m in sys.modules]}}))
""")


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["run", "--help"], ["backfill", "--help"]],
                         ids=" ".join)
def test_version_and_help_import_no_beam_torch_or_graph(args):
    got = _cli_in_child(*args)
    assert got["rc"] == 0 and got["loaded"] == [], got


@pytest.mark.parametrize("args, message", [
    (["run", "--input", "seeds/", "--output", "OUT", "--dry-run"], "--dry-run: only for newsbeam backfill"),
    (["run", "--input", "seeds/", "--output", "OUT", "--since", "2020-12-01"], "--since: only for newsbeam backfill"),
    (["run", "--input", "seeds/", "--output", "OUT", "--poll-interval", "5"], "--poll-interval: only with --streaming"),
    (["backfill", "--since", "2020-12-01", "--until", "2020-12-31", "--input", "seeds/", "--output", "OUT",
      "--streaming"], "--streaming: only for newsbeam run"),
])
def test_a_misplaced_option_is_refused_before_any_beam_work(tmp_path, args, message):
    out = str(tmp_path / "out")
    args = [out if a == "OUT" else a for a in args]
    got = _cli_in_child(*args)
    assert got["rc"] == 2 and message in got["stderr"] and got["stderr"].startswith("usage: newsbeam"), got
    assert got["loaded"] == [], got  # refused from the table alone
    proc = cli(*args)  # and through the installed entry point
    assert proc.returncode == 2 and message in proc.stderr
    assert not Path(out).exists()


def test_import_newsbeam_is_light_until_a_name_is_used():
    got = _child("import json, sys, newsbeam; v = newsbeam.__version__; "
                 f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    assert got == []


def test_the_version_is_written_in_one_place():
    from importlib.metadata import version

    import newsbeam
    import pipeline
    from pipeline._version import __version__

    assert newsbeam.__version__ == pipeline.__version__ == __version__ == version("newsbeam")
    assert cli("--version").stdout == f"newsbeam {__version__}\n"
    setup_py = (ROOT / "setup.py").read_text(encoding="utf-8")
    assert f'"{__version__}"' not in setup_py and '"_version.py"' in setup_py  # setup.py reads it, never repeats it


def test_mirrored_defaults_equal_their_owners():
    """The option table copies a few defaults from modules that import Beam or torch (so --help need not)."""
    from pipeline import feeds, pages
    from pipeline.arguments import MIRRORED
    from transforms import dedup_stream, ner, stance

    assert MIRRORED == {"DEFAULT_CONCURRENT_FETCHES": feeds.DEFAULT_CONCURRENT_FETCHES,
                        "DEFAULT_MAX_ENTRIES": feeds.DEFAULT_MAX_ENTRIES,
                        "MAX_RETRY_AFTER": feeds.FetchLimits.max_retry_after,
                        "DEFAULT_URL_DELAY": pages.DEFAULT_URL_DELAY,
                        "DEFAULT_DEDUP_TTL": dedup_stream.DEFAULT_DEDUP_TTL,
                        "DEFAULT_TEXT_MAX": dedup_stream.DEFAULT_TEXT_MAX,
                        "DEFAULT_BAND_MAX": dedup_stream.DEFAULT_BAND_MAX, "NER_LANGUAGES": ner.NER_LANGUAGES,
                        "STANCE_MEASURED": stance.STANCE_MEASURED}


# ------------------------------------------------------------------ exit codes
@pytest.mark.parametrize("values, code", [
    ({"read": 3, "written": 2, "dead_lettered": 1}, 0),
    ({"read": 2, "duplicates": 2}, 0),  # a rerun: nothing new, but nothing failed
    ({"read": 0, "written": 0, "duplicates": 0, "dead_lettered": 0}, 3),
    ({"read": 2, "dead_lettered": 2}, 3),
    ({"read": 2, "out_of_range": 1, "dead_lettered": 1}, 3),
    ({"read": 3, "written": 1, "dead_lettered": 1}, 1),  # one record unaccounted for
    ({}, 0),  # a submitted remote job: its counters are in the runner's console
])
def test_exit_code_of_the_counters(values, code):
    from pipeline.launch import exit_code

    assert exit_code(values) == code


def test_exit_codes_are_in_the_help():
    for args in (["--help"], ["run", "--help"], ["backfill", "--help"]):
        out = cli(*args).stdout
        assert "exit status:" in out and "\n  3    nothing written" in out, args


def closed_port() -> int:
    """A local port nothing listens on: bound, read, closed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_feed_that_cannot_be_reached_exits_3(tmp_path):
    proc = cli("run", "--feeds", f"http://127.0.0.1:{closed_port()}/rss.xml", "--output", str(tmp_path / "o"),
                    "--skip-models", "--quiet")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "written 0" in proc.stdout and "dead-lettered 1" in proc.stdout
    assert "nothing written: every record read was dead-lettered (exit 3)" in proc.stdout


def test_an_empty_input_file_exits_3(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    proc = cli("run", "--input", str(empty), "--output", str(tmp_path / "o"), "--skip-models", "--quiet")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "every record accounted for" in proc.stdout and "nothing written" in proc.stdout
