"""The arguments of `newsbeam run|backfill` (and `python -m pipeline.run|backfill`): one argparse parser per command
built from the option definitions in pipeline.options, checked before anything runs. An unknown or misspelt
option is a usage error (exit 2, with the nearest known option), not Beam's warning followed by a run with
defaults; Beam's own options (--runner, Dataflow's, --direct_*) pass through.
"""
from __future__ import annotations

import argparse
import difflib
from typing import Sequence

from .options import PackagePath

COMMANDS = {
    "run": "the pipeline over files and/or feeds (batch; --streaming polls feeds)",
    "backfill": "only articles published in --since .. --until, one partition per day, idempotent",
    "report": "an HTML report (charts and tables) over a written output",
    "eval": "score a model on a gold file: newsbeam eval ner|stance --gold PATH --format ...",
    "train": "fine-tune a model: newsbeam train ner|stance --config configs/....yaml",
}


def version() -> str:
    from importlib.metadata import PackageNotFoundError, version as dist_version

    try:
        return dist_version("newsbeam")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown (not installed)"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help with each option's default where it has one (not for switches that are off, not for None), and the
    shipped models' defaults shown as package paths, not as this machine's absolute paths."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "%(default)" in text or default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        if isinstance(default, PackagePath):
            return f"{text} (default: {'/'.join(default.relative)}, installed with newsbeam)"
        if isinstance(default, list):
            return f"{text} (default: {' '.join(map(str, default))})" if default else text
        return f"{text} (default: %(default)s)"


def pipeline_parser(command: str, parent: argparse._SubParsersAction | None = None) -> argparse.ArgumentParser:
    from .options import BackfillOptions, NewsbeamOptions, StreamingOptions, add_runner_arguments

    kwargs = dict(help=COMMANDS[command], description=COMMANDS[command], formatter_class=HelpFormatter,
                  allow_abbrev=False, usage=f"newsbeam {command} [options]  (newsbeam {command} --help lists them)")
    if command == "backfill":
        kwargs["epilog"] = ("example: newsbeam backfill --since 2020-12-01 --until 2020-12-31 "
                            "--input 'archive/*.jsonl' --output out/")
    else:
        kwargs["epilog"] = ("example: newsbeam run --input 'seeds/*' --output out/ --targets Armenia Azerbaijan\n"
                            "         newsbeam run --streaming --feeds https://example.org/rss.xml --output out/")
    parser = (parent.add_parser(command, **kwargs) if parent is not None else
              argparse.ArgumentParser(prog=f"newsbeam {command}", **{k: v for k, v in kwargs.items() if k != "help"}))
    if command == "backfill":
        BackfillOptions._add_argparse_args(parser)
    NewsbeamOptions._add_argparse_args(parser)
    if command == "run":
        StreamingOptions._add_argparse_args(parser)
    add_runner_arguments(parser, streaming=command == "run")
    return parser


def _beam_unknown(args: Sequence[str]) -> list[str]:
    """The arguments no Beam PipelineOptions class knows (what Beam itself would only warn about and drop)."""
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

    parser = _BeamArgumentParser(allow_abbrev=False)
    for cls in {str(c): c for c in PipelineOptions.__subclasses__()}.values():  # as Beam does: one per name
        cls._add_argparse_args(parser)
    return parser.parse_known_args(list(args))[1]


def _known_option_names(parser: argparse.ArgumentParser) -> list[str]:
    return [s for action in parser._actions for s in action.option_strings if s.startswith("--")]


def unknown_option_message(unknown: Sequence[str], known: Sequence[str]) -> str:
    """'unrecognized arguments: --target Armenia (did you mean --targets?)'."""
    hints = []
    for token in unknown:
        if token.startswith("--"):
            close = difflib.get_close_matches(token.split("=", 1)[0], known, n=1, cutoff=0.6)
            if close:
                hints.append(f"{token.split('=', 1)[0]}: did you mean {close[0]}?")
    return f"unrecognized arguments: {' '.join(unknown)}" + (f" ({'; '.join(hints)})" if hints else "")


def check_pipeline_args(command: str, argv: Sequence[str]) -> argparse.Namespace:
    """Parse `newsbeam run|backfill` arguments; exit 2 with argparse's usage line on anything unknown."""
    parser = pipeline_parser(command)
    args, rest = parser.parse_known_args(list(argv))
    unknown = _beam_unknown(rest) if rest else []
    if unknown:
        parser.error(unknown_option_message(unknown, _known_option_names(parser)))
    return args
