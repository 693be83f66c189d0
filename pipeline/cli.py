"""The `newsbeam` command line: `newsbeam run|backfill|report|eval|train ...`.

`run` and `backfill` are parsed here, from the option definitions in pipeline.options, before anything runs: an
unknown or misspelt option is a usage error (exit 2, with the nearest known option), not a warning followed by a
run with defaults. Beam's own options (--runner, Dataflow's, --direct_*) pass through to Beam. `report`, `eval`
and `train` have their own parsers; `newsbeam COMMAND --help` shows each command's options.
"""
from __future__ import annotations

import argparse
import difflib
import sys
from typing import Callable, Sequence

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


def _pipeline_parser(command: str, parent: argparse._SubParsersAction | None = None) -> argparse.ArgumentParser:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="newsbeam", formatter_class=HelpFormatter, allow_abbrev=False,
                                     description="newsbeam: news ingestion on Apache Beam (language, transformer "
                                                 "NER and stance, dedup, validated JSONL).",
                                     epilog="`newsbeam COMMAND --help` lists the options of each command.")
    parser.add_argument("--version", action="version", version=f"newsbeam {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for command in ("run", "backfill"):
        _pipeline_parser(command, sub)
    for command in ("report", "eval", "train"):  # parsed by their own modules (see _delegated)
        sub.add_parser(command, help=COMMANDS[command], add_help=False)
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
    parser = _pipeline_parser(command)
    args, rest = parser.parse_known_args(list(argv))
    unknown = _beam_unknown(rest) if rest else []
    if unknown:
        parser.error(unknown_option_message(unknown, _known_option_names(parser)))
    return args


def _delegated(command: str) -> Callable[[list[str]], int]:
    """The main() of the commands with their own parsers (imported on use: eval and train load torch)."""
    if command == "report":
        from .report import main

        return main
    if command == "eval":
        from modeling.evaluate import main

        return main
    return _train


def _train(argv: list[str]) -> int:
    if not argv or argv[0] not in ("ner", "stance"):
        if argv and argv[0] in ("-h", "--help"):
            print("usage: newsbeam train {ner,stance} [--config FILE] [--output DIR] [--log FILE] [--threads N]\n\n"
                  "`newsbeam train ner --help` / `newsbeam train stance --help` for the options.")
            return 0
        print("usage: newsbeam train {ner,stance} ...\nnewsbeam train: error: say which model: ner or stance",
              file=sys.stderr)
        return 2
    import importlib

    return importlib.import_module(f"modeling.train_{argv[0]}").main(argv[1:])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:
        parser.print_usage(sys.stderr)
        print(f"newsbeam: error: a command is required: {', '.join(COMMANDS)} (newsbeam --help)", file=sys.stderr)
        return 2
    if argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv = ["run", *argv]  # `newsbeam --input ...` means `newsbeam run --input ...`
    command = argv[0]
    if command in ("report", "eval", "train"):
        return _delegated(command)(argv[1:])
    if command not in ("run", "backfill"):
        parser.parse_args(argv)  # --help, --version, or an unknown command: argparse prints and exits
        return 2
    check_pipeline_args(command, argv[1:])
    if command == "backfill":
        from .backfill import main as backfill_main

        return backfill_main(argv[1:])
    from .run import main as run_main

    return run_main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
