"""The `newsbeam` command line: `newsbeam run|backfill|report|eval|train ...`.

`run` and `backfill` are checked by pipeline.arguments before anything runs; `report`, `eval` and `train` have
their own parsers. `newsbeam COMMAND --help` shows each command's options.

Nothing heavy is imported at module level: `--version`, `--help` and usage errors answer without apache_beam,
torch or the pipeline graph, which a command imports only when it runs.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable

from ._version import __version__
from .commands import COMMANDS, EXIT_CODES, EXIT_USAGE, PIPELINE_COMMANDS

DELEGATED = ("report", "eval", "train")  # parsed by their own modules (see _delegated)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: the commands and --version. Each command's options are its own parser's."""
    parser = argparse.ArgumentParser(prog="newsbeam", formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False,
                                     description="newsbeam: news ingestion on Apache Beam (language, transformer "
                                                 "NER and stance, dedup, validated JSONL).",
                                     epilog="`newsbeam COMMAND --help` lists the options of each command.\n\n"
                                            f"newsbeam run and backfill: {EXIT_CODES}")
    parser.add_argument("--version", action="version", version=f"newsbeam {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for command, text in COMMANDS.items():
        sub.add_parser(command, help=text, add_help=False)
    return parser


def _delegated(command: str) -> Callable[[list[str]], int]:
    """The main() of the commands with their own parsers (imported on use: eval and train load torch)."""
    if command == "report":
        from .report import main

        return main
    if command == "eval":
        from modeling.evaluation.evaluate import main

        return main
    return _train


TRAINERS = {"ner": "ner", "stance": "stance", "ner-student": "distill"}  # model -> modeling.training module


def _train(argv: list[str]) -> int:
    if not argv or argv[0] not in TRAINERS:
        if argv and argv[0] in ("-h", "--help"):
            print("usage: newsbeam train {ner,stance,ner-student} [--config FILE] [--output DIR] [--log FILE] "
                  "[--threads N]\n\n`newsbeam train MODEL --help` for the options; ner-student distils the NER "
                  "model into a shallower one (configs/ner-student.yaml).")
            return 0
        print("usage: newsbeam train {ner,stance,ner-student} ...\nnewsbeam train: error: say which model: ner, "
              "stance or ner-student", file=sys.stderr)
        return EXIT_USAGE
    return importlib.import_module(f"modeling.training.{TRAINERS[argv[0]]}").main(argv[1:])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:
        parser.print_usage(sys.stderr)
        print(f"newsbeam: error: a command is required: {', '.join(COMMANDS)} (newsbeam --help)", file=sys.stderr)
        return EXIT_USAGE
    if argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv = ["run", *argv]  # `newsbeam --input ...` means `newsbeam run --input ...`
    command = argv[0]
    if command in DELEGATED:
        return _delegated(command)(argv[1:])
    if command not in PIPELINE_COMMANDS:
        parser.parse_args(argv)  # --help, --version, or an unknown command: argparse prints and exits
        return EXIT_USAGE
    from .arguments import check_pipeline_args  # the option table (its defaults import the model packages)

    check_pipeline_args(command, argv[1:])  # --help, unknown options, options outside the command or mode
    if command == "backfill":
        from .backfill import main as backfill_main

        return backfill_main(argv[1:])
    from .run import main as run_main  # batch or --streaming (pipeline.graph.build)

    return run_main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
