"""The `newsbeam` command: `newsbeam [run] ...`, `newsbeam train ner|stance`, `newsbeam eval ner|stance`."""
from __future__ import annotations

import sys

USAGE = """usage: newsbeam <command> [options]

commands:
  run            the batch pipeline over files (default when the first argument is an option)
  train ner      fine-tune the NER model      (newsbeam train ner --config configs/ner.yaml)
  train stance   fine-tune the stance model   (newsbeam train stance --config configs/stance.yaml)
  eval ner       entity-level P/R/F1 on a gold file (--gold PATH --format conll|brat [--json])
  eval stance    accuracy / macro-F1 on a gold file (--gold PATH --format newsmtsc|rusentne [--json])
  backfill       only articles published in a date range (--since --until [--dry-run]), idempotent per day
  report         an HTML report over a written output (--output out/ --html report.html)

`newsbeam <command> --help` for the options of each."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    cmd = argv[0]
    if cmd.startswith("-"):
        cmd, argv = "run", ["run", *argv]
    if cmd == "run":
        from .run import main as run_main

        return run_main(argv[1:])
    if cmd == "backfill":
        from .backfill import main as backfill_main

        return backfill_main(argv[1:])
    if cmd == "report":
        from .report import main as report_main

        return report_main(argv[1:])
    if cmd in ("train", "eval") and len(argv) >= 2 and argv[1] in ("ner", "stance"):
        module = {("train", "ner"): "modeling.train_ner", ("train", "stance"): "modeling.train_stance",
                  ("eval", "ner"): "modeling.evaluate", ("eval", "stance"): "modeling.evaluate"}[(cmd, argv[1])]
        import importlib

        mod = importlib.import_module(module)
        if cmd == "eval":
            return mod.main([argv[1], *argv[2:]])
        return mod.main(argv[2:])
    print(f"newsbeam: unknown command {' '.join(argv[:2])!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
