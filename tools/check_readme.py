"""`make check-readme`: every command line in the README's shell blocks, checked against what the commands do.

Each command is in CHECKS with how it is checked:
- run:   executed on this clone (in a scratch folder holding a copy of seeds/, so `out/` and `report.html` land
         there), and must exit 0;
- parse: needs what a clone does not have (the internet, a cloud project, hours of training, the corpora), so
         its command line is parsed by the command's own parser, the one `newsbeam` uses, which refuses unknown
         options and options outside their command or mode; `make` lines are expanded by `make -n` first, so
         the Makefile's wiring is checked too;
- skip:  not a newsbeam command line (shell variables, docker, gcloud), with the reason.
A README command missing from CHECKS fails the check, and so does an entry the README no longer has, so the two
cannot drift apart (tests/test_readme_commands.py checks that much on every `make test`). The README's ```pycon
examples are a doctest in tests/test_newsbeam_api.py.

    python tools/check_readme.py            # check every command (a few minutes: five model runs)
    python tools/check_readme.py --list     # only the table against the README, nothing run
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = {"newsbeam", "make", "python", "python3", "~/nb/bin/pip", "docker", "gcloud"}
ASSIGNMENTS = ("DF=", "IMAGE=")
NO_NETWORK = "needs the internet"
CLOUD = "needs a Google Cloud project (the Dataflow dry runs are tests/test_dataflow.py)"
HOURS = "hours of training on 2 cores"
CORPORA = "needs ../shared/data and minutes per corpus (make eval runs the evaluation)"

# README command (as written, comment removed) -> (how, reason or None, what to run or parse instead, if not it)
CHECKS: dict[str, tuple[str, str | None, str | None]] = {
    "make install": ("skip", "the first step of every check (the environment these commands run in)", None),
    "make run": ("run", None, "make -C {root} run OUT={tmp}/make-out"),
    "make test": ("skip", "CI runs it on every change", None),
    "make wheel": ("run", None, "make -C {root} wheel"),
    "python3 -m venv ~/nb && ~/nb/bin/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu":
        ("skip", "downloads; make check-install installs the same way into a throwaway venv", None),
    "~/nb/bin/pip install dist/newsbeam-0.1.0-py3-none-any.whl":
        ("skip", "make check-install installs the wheel into a throwaway venv", None),
    "newsbeam run --input 'seeds/*.txt' --output out/ --targets Armenia Azerbaijan": ("run", None, None),
    "newsbeam run --input seeds/ --output out/": ("run", None, None),
    "python -m pipeline.run --input 'seeds/*.txt' --output out/ --targets Armenia Azerbaijan --runner DirectRunner":
        ("run", None, None),
    "newsbeam run --input 'gs://bucket/news/2020-12-*/*.jsonl' --output gs://bucket/newsbeam/ ...":
        ("parse", CLOUD, "newsbeam run --input 'gs://bucket/news/2020-12-*/*.jsonl' --output gs://bucket/newsbeam/"),
    "newsbeam backfill --since 2020-12-01 --until 2020-12-31 --input 'seeds/*' --output out/ --dry-run":
        ("run", None, None),
    "newsbeam backfill --since 2020-12-01 --until 2020-12-31 --input 'seeds/*' --output out/": ("run", None, None),
    "newsbeam report --output out/ --html report.html": ("run", None, None),
    "newsbeam eval ner|stance ... newsbeam train ner|stance ... newsbeam --version":
        ("run", None, "newsbeam --version && newsbeam eval --help && newsbeam train --help"),
    "newsbeam run --feeds https://example.org/rss.xml https://example.com/atom --output out/":
        ("parse", NO_NETWORK, None),
    "newsbeam run --feeds-file feeds.txt --output out/": ("parse", NO_NETWORK, None),
    "newsbeam run --urls urls.txt --output out/": ("parse", NO_NETWORK, None),
    "newsbeam run --urls urls.txt --input 'saved/*.html' --feeds-file feeds.txt --output out/":
        ("parse", NO_NETWORK, None),
    'make run-feeds FEEDS="https://example.org/rss.xml"': ("parse", NO_NETWORK, None),
    'make run-feeds FEEDS="..." STREAMING=1 POLL_INTERVAL=300':
        ("parse", NO_NETWORK, 'make run-feeds FEEDS="https://example.org/rss.xml" STREAMING=1 POLL_INTERVAL=300'),
    "newsbeam run --feeds ... --output out/ --fetch-full-text":
        ("parse", NO_NETWORK, "newsbeam run --feeds https://example.org/rss.xml --output out/ --fetch-full-text"),
    "make backfill-yesterday INPUT='/data/news/*.jsonl'": ("parse", "yesterday's input is not in a clone", None),
    "newsbeam run --streaming --feeds-file feeds.txt --output out/ --poll-interval 300 [--stop-after 3600]":
        ("parse", NO_NETWORK, "newsbeam run --streaming --feeds-file feeds.txt --output out/ --poll-interval 300 "
                              "--stop-after 3600"),
    "newsbeam run ... --ner-model dslim/bert-base-NER --stance-model ./my-stance-model":
        ("parse", "needs the Hugging Face hub and a model of your own",
         "newsbeam run --input 'seeds/*' --output out/ --ner-model dslim/bert-base-NER "
         "--stance-model ./my-stance-model"),
    "DF='--runner DataflowRunner --project PROJECT --region REGION --temp_location gs://BUCKET/tmp "
    "--staging_location gs://BUCKET/staging --torch-threads 1'": ("skip", "a shell variable", None),
    "IMAGE=REGION-docker.pkg.dev/PROJECT/newsbeam/worker:0.1.0": ("skip", "a shell variable", None),
    "docker build -f deploy/Dockerfile -t $IMAGE . && docker push $IMAGE": ("skip", "needs Docker and a registry", None),
    "gcloud dataflow flex-template build gs://BUCKET/templates/newsbeam.json --image $IMAGE --sdk-language PYTHON "
    "--metadata-file deploy/flex-template-metadata.json": ("skip", CLOUD, None),
    "gcloud dataflow flex-template run newsbeam-$(date +%F) --template-file-gcs-location "
    "gs://BUCKET/templates/newsbeam.json --region REGION --temp-location gs://BUCKET/tmp --staging-location "
    "gs://BUCKET/staging --additional-pipeline-options sdk_container_image=$IMAGE --parameters "
    "'command=backfill,since=2020-12-01,until=2020-12-31,input=gs://BUCKET/news/*.jsonl,output=gs://BUCKET/newsbeam/'":
        ("skip", CLOUD, None),
    "gcloud scheduler jobs create http newsbeam-nightly --location REGION --schedule '15 2 * * *' --time-zone "
    "Etc/UTC --uri https://dataflow.googleapis.com/v1b3/projects/PROJECT/locations/REGION/flexTemplates:launch "
    "--http-method POST --headers Content-Type=application/json --oauth-service-account-email "
    "SA@PROJECT.iam.gserviceaccount.com --oauth-token-scope https://www.googleapis.com/auth/cloud-platform "
    "--message-body-from-file deploy/nightly-backfill.json": ("skip", CLOUD, None),
    "make train-ner": ("parse", HOURS, None),
    **{f"newsbeam train ner --config configs/{name}.yaml": ("parse", HOURS, None)
       for name in ("ner", "ner-stage2", "ner-stage3", "ner-stage4", "ner-stage5")},
    "newsbeam train stance --config configs/stance.yaml": ("parse", HOURS, None),
    "newsbeam eval ner --gold ../shared/data/ner/conll/en/val.conllu --format conll --json": ("parse", CORPORA, None),
    "newsbeam eval ner --gold ../shared/data/ner/nerel/dev --format brat": ("parse", CORPORA, None),
    "newsbeam eval ner --gold ../shared/data/ner/wikiann/en/val.conllu --format conll --errors 20":
        ("parse", CORPORA, None),
    "newsbeam eval ner --gold ../shared/data/ner/wikiann/de/val.conllu --format conll --model build/ner-wikiann-push "
    "--against modeling/weights/ner": ("parse", CORPORA, None),
    "newsbeam eval stance --gold ../shared/data/stance/newsmtsc/devtest_mt.jsonl --format newsmtsc":
        ("parse", CORPORA, None),
    "newsbeam eval stance --gold ../shared/data/stance/rusentne/train.tsv --format rusentne --rusentne-heldout":
        ("parse", CORPORA, None),
    "newsbeam eval stance --gold ../shared/data/stance/rusentne/train.tsv --format rusentne --rusentne-heldout "
    "--model build/stance-repro --against modeling/weights/stance": ("parse", CORPORA, None),
}


def readme_commands(text: str) -> list[str]:
    """The command lines of the README's plain ``` blocks (not ```json or ```pycon), `\\` continuations joined,
    comments and runs of spaces removed; lines that do not start with a command (program output) are left out."""
    commands, block, lines = [], None, text.split("\n")
    for line in lines:
        if line.startswith("```"):
            block = None if block is not None else line[3:].strip()
            continue
        if block != "":
            continue
        if commands and commands[-1].endswith("\\"):
            commands[-1] = commands[-1][:-1] + " " + line.strip()
        elif _is_command(line.strip()):
            commands.append(line.strip())
    return [" ".join(_without_comment(c).split()) for c in commands]


def _is_command(line: str) -> bool:
    """A line that runs a program (not program output such as `newsbeam summary ...` or `newsbeam: refused`)."""
    words = line.split()
    if not words or line.startswith("newsbeam summary"):
        return False
    return words[0] in PROGRAMS or line.startswith(ASSIGNMENTS)


def _without_comment(command: str) -> str:
    """The command without its trailing `# ...` comment (a # inside quotes or a word stays)."""
    quote = None
    for i, ch in enumerate(command):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or command[i - 1].isspace()):
            return command[:i].rstrip()
    return command


def table_problems(commands: list[str]) -> list[str]:
    unknown = [c for c in commands if c not in CHECKS]
    stale = [c for c in CHECKS if c not in commands]
    return ([f"README command not in tools/check_readme.py CHECKS: {c}" for c in unknown]
            + [f"CHECKS entry the README no longer has: {c}" for c in stale])


def _make_commands(line: str) -> list[list[str]]:
    """The newsbeam command lines `make TARGET VAR=...` would run (make -n), as argv lists without the program."""
    argv = shlex.split(line)
    dry = subprocess.run(["make", "-n", "-C", str(ROOT), *argv[1:]], capture_output=True, text=True, check=True)
    found = []
    for shell_line in dry.stdout.replace("\\\n", " ").splitlines():  # make prints a recipe's continuations
        words = shlex.split(shell_line.replace("$(date -u -d yesterday +%F)", "2020-12-13"))
        if words and words[0].endswith("/newsbeam"):
            found.append(words[1:])
    if not found:
        raise ValueError(f"`make -n {' '.join(argv[1:])}` runs no newsbeam command")
    return found


def parse_only(line: str) -> None:
    """Parse a command line with the parser `newsbeam` would use; raise on an unknown or misplaced option."""
    try:
        _parse_line(line)
    except SystemExit as exc:  # argparse's own errors (a bad value) exit; its message is on stderr
        raise ValueError(f"usage error (exit {exc.code})") from None


def _parse_line(line: str) -> None:
    if line.startswith("make "):
        for argv in _make_commands(line):
            _parse_line(shlex.join(["newsbeam", *argv]))
        return
    argv = shlex.split(line)[1:]
    command = argv[0]
    if command in ("run", "backfill"):
        from pipeline.arguments import parse_pipeline_args

        parse_pipeline_args(command, argv[1:])
    elif command == "eval":
        from modeling.evaluation.evaluate import build_parser

        _parse(build_parser(), argv[1:])
    elif command == "train":
        from modeling.training.common import train_parser

        args = _parse(train_parser("newsbeam train", None, ""), argv[2:])
        if argv[1] not in ("ner", "stance") or not (ROOT / args.config).is_file():
            raise ValueError(f"no such model or config: {argv[1]} {args.config}")
    else:
        raise ValueError(f"no parser for `newsbeam {command}`")


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    parser.exit_on_error = False
    args, rest = parser.parse_known_args(argv)
    if rest:
        raise ValueError(f"unrecognised arguments: {' '.join(rest)}")
    return args


def run(line: str, scratch: Path) -> None:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(["bash", "-c", line], cwd=scratch, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-600:]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--list", action="store_true", help="only check the table against the README; run nothing")
    args = ap.parse_args(argv)
    commands = readme_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    problems = table_problems(commands)
    for problem in problems:
        print(f"FAIL  {problem}")
    if args.list or problems:
        print(f"{len(commands)} README commands, {len(problems)} problems")
        return 1 if problems else 0
    failed = 0
    with tempfile.TemporaryDirectory(prefix="check-readme-") as tmp:
        scratch = Path(tmp)
        shutil.copytree(ROOT / "seeds", scratch / "seeds")
        for line in dict.fromkeys(commands):  # a command the README shows twice is checked once
            how, reason, instead = CHECKS[line]
            todo = (instead or line).format(root=shlex.quote(str(ROOT)), tmp=shlex.quote(tmp))
            start = time.monotonic()
            try:
                if how == "run":
                    run(todo, scratch)
                elif how == "parse":
                    parse_only(todo)
            except Exception as exc:
                failed += 1
                print(f"FAIL  {how:5}  {line}\n      {exc}")
                continue
            note = f"  ({reason})" if reason else ""
            print(f"ok    {how:5}  {line}{note}  [{time.monotonic() - start:.1f}s]", flush=True)
    counts = {h: sum(CHECKS[c][0] == h for c in set(commands)) for h in ("run", "parse", "skip")}
    print(f"{len(set(commands))} README commands: {counts['run']} run, {counts['parse']} parsed, {counts['skip']} "
          f"skipped; {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
