"""`newsbeam.run`: `newsbeam run` from Python, through the same argument check and pipeline.run.run."""
from __future__ import annotations

from typing import Any

from pipeline.arguments import check_pipeline_args
from pipeline.run import run as run_pipeline


def options_to_argv(options: dict[str, Any]) -> list[str]:
    """{"input": ["a", "b"], "skip_models": True, "dedup_threshold": 0.9} -> --input a b --skip-models
    --dedup-threshold 0.9 (False and None leave an option out; Beam's own options keep their underscores)."""
    argv: list[str] = []
    for name, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + (name if name.endswith("_location") else name.replace("_", "-"))
        if value is True:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, str(value)]
    return argv


def run(*argv: str, **options: Any) -> dict[str, int]:
    """Run the batch pipeline as `newsbeam run` does and return its summary counts (read, written, duplicates,
    dead_lettered, ...).

    Options are the CLI's, as keywords (`input=["seeds/*.txt"], output="out/", targets=["Armenia"],
    format="both"`) or as CLI arguments (`run("--input", "seeds/*.txt", "--output", "out/")`). An unknown
    option raises ValueError; a failed run raises pipeline.launch.RunFailed, and an output root another run holds
    raises pipeline.lease.RootBusy before anything runs. Streaming (`--streaming`) runs
    until stopped and is left to the CLI."""
    args = [*argv, *options_to_argv(options)]
    if "--streaming" in args:
        raise ValueError("newsbeam.run is batch only: run streaming with `newsbeam run --streaming ...`")
    try:
        check_pipeline_args("run", args)
    except SystemExit as exc:  # argparse has printed the usage error
        raise ValueError(f"invalid newsbeam run options: {' '.join(args)}") from exc
    return run_pipeline(args)
