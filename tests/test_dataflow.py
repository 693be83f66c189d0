"""Dataflow: the real graph builds, validates and serialises with DataflowRunner options (--dry_run=True, no
job submitted, nothing leaves the machine); bad Dataflow options are refused up front with the fix. The flex
template (deploy/): flex_main.py turns launcher parameters into a newsbeam command line (command=backfill,
since/until=yesterday in UTC), the metadata and the nightly launch body match it, and .dockerignore keeps local
state out of the image but the weights in."""
from __future__ import annotations

import datetime as dt
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

pytest.importorskip("apache_beam.io.gcp.gcsio", reason="apache-beam[gcp] (the `dataflow` extra) is not installed")

DATAFLOW = ["--runner", "DataflowRunner", "--project", "newsbeam-test", "--region", "europe-west1",
            "--temp_location", "gs://newsbeam-test-bucket/tmp", "--staging_location", "gs://newsbeam-test-bucket/stage"]


def test_graph_builds_and_pickles_for_dataflow():
    proc = run_cli(["run", "--input", "seeds/*.txt", "--output", "gs://newsbeam-test-bucket/out", "--targets",
                    "Armenia", *DATAFLOW, "--dry_run=True", "--setup_file", "./setup.py"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "dry run: the graph was built" in proc.stdout


def test_backfill_graph_builds_for_dataflow():
    """`newsbeam backfill` on Dataflow: Beam's own --dry_run=True builds the graph; it is not mistaken for
    backfill's --dry-run (which only lists days)."""
    proc = run_cli(["backfill", "--since", "2020-11-01", "--until", "2020-12-31", "--input", "seeds/*.txt",
                    "--output", "gs://newsbeam-test-bucket/out", "--targets", "Armenia", *DATAFLOW, "--dry_run=True"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "dry run: the graph was built" in proc.stdout and "days with articles" not in proc.stdout


@pytest.mark.parametrize("drop, message", [("--temp_location", "needs --temp_location gs://"),
                                           ("--staging_location", "needs --staging_location gs://")])
def test_missing_gcs_locations_are_clear_errors(drop, message):
    i = DATAFLOW.index(drop)
    args = DATAFLOW[:i] + DATAFLOW[i + 2:]
    proc = run_cli(["run", "--input", "seeds/*.txt", "--output", "gs://b/out", *args, "--dry_run=True"])
    assert proc.returncode == 2 and message in proc.stderr


def test_local_output_is_refused_on_dataflow(tmp_path):
    proc = run_cli(["run", "--input", "seeds/*.txt", "--output", str(tmp_path), *DATAFLOW, "--dry_run=True"])
    assert proc.returncode == 2 and "must be a cloud path" in proc.stderr


def test_default_models_resolve_on_the_worker_not_the_launcher(tmp_path, monkeypatch):
    """The RunInference handlers are pickled on the launcher and loaded on workers that installed newsbeam
    (--setup_file or the SDK container) into their own site-packages: the default model directories must point
    into the worker's package, not at the launcher's checkout (which does not exist there)."""
    import os

    from apache_beam.internal import pickler
    from apache_beam.options.pipeline_options import PipelineOptions

    from modeling import shipping as options_module  # where PackagePath resolves the package root
    from pipeline.options import NewsbeamOptions
    from transforms.ner import RecogniseEntities, model_label
    from transforms.stance import ClassifyStance

    opts = PipelineOptions(["--output", "gs://b/out"]).view_as(NewsbeamOptions)
    launcher_ner = str(opts.ner_model)
    assert os.path.isdir(launcher_ner) and os.path.isdir(opts.stance_model)
    blobs = [pickler.dumps(RecogniseEntities(opts.ner_model).handler),
             pickler.dumps(ClassifyStance(opts.stance_model, {"Armenia": []}).handler)]

    worker_root = tmp_path / "site-packages"  # a worker's install: same package layout, another place
    (worker_root / "modeling").mkdir(parents=True)
    (worker_root / "modeling" / "weights").symlink_to(options_module.PACKAGE_ROOT / "modeling" / "weights")
    monkeypatch.setattr(options_module, "PACKAGE_ROOT", worker_root)
    ner, stance = (pickler.loads(b) for b in blobs)
    assert ner.model_name == str(worker_root / "modeling" / "weights" / "ner") != launcher_ner
    assert stance.model_name == str(worker_root / "modeling" / "weights" / "stance")
    assert os.path.isfile(os.path.join(ner.model_name, "newsbeam.json"))
    assert model_label(ner.model_name) == "newsbeam-ner (ner)"  # the label written into every article


def test_explicit_model_paths_are_passed_through_unchanged(tmp_path):
    from apache_beam.internal import pickler
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.options import NewsbeamOptions
    from transforms.ner import RecogniseEntities

    opts = PipelineOptions(["--ner-model", "dslim/bert-base-NER"]).view_as(NewsbeamOptions)
    assert pickler.loads(pickler.dumps(RecogniseEntities(opts.ner_model).handler)).model_name == "dslim/bert-base-NER"


# ------------------------------------------------------------------ flex template (deploy/)
def _flex_main():
    spec = importlib.util.spec_from_file_location("flex_main", ROOT / "deploy" / "flex_main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_flex(args: list[str]) -> subprocess.CompletedProcess:
    """Run deploy/flex_main.py as the flex template launcher does: a file, with --name=value parameters."""
    return subprocess.run([sys.executable, str(ROOT / "deploy" / "flex_main.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=3600)


def _utc_days_ago(n: int) -> set[str]:  # a test running across midnight UTC may see either day
    now = dt.datetime.now(dt.timezone.utc)
    return {(d.date() - dt.timedelta(days=n)).isoformat() for d in (now, now + dt.timedelta(minutes=5))}


DATAFLOW_FLEX = ["--runner=DataflowRunner", "--project=newsbeam-test", "--region=europe-west1",
                 "--temp_location=gs://newsbeam-test-bucket/tmp", "--staging_location=gs://newsbeam-test-bucket/stage"]


def test_flex_parameters_become_a_backfill_command_line():
    fm = _flex_main()
    today = dt.date(2021, 3, 1)
    argv = fm.launcher_argv(["--command=backfill", "--since=yesterday", "--until=today-0",
                             "--input=gs://b/news/*.jsonl gs://b/rss/*.xml", "--output=gs://b/out",
                             "--targets=Armenia Azerbaijan=Azerbaijani,Baku", "--dedup_threshold=0.7",
                             "--fetch-full-text=false", *DATAFLOW_FLEX, "--template_location=gs://b/job_object"],
                            today=today)
    assert argv == ["backfill", "--since=2021-02-28", "--until=2021-03-01",
                    "--input", "gs://b/news/*.jsonl", "gs://b/rss/*.xml", "--output=gs://b/out",
                    "--targets", "Armenia", "Azerbaijan=Azerbaijani,Baku", "--dedup-threshold=0.7",
                    *DATAFLOW_FLEX, "--template_location=gs://b/job_object"]
    # no command: the batch run, as before; a switch set to true becomes the bare flag
    assert fm.launcher_argv(["--input=a.jsonl", "--output=gs://b/o", "--fetch-full-text=true"]) == \
        ["run", "--input", "a.jsonl", "--output=gs://b/o", "--fetch-full-text"]
    # every store_true option is a switch (read off the parser), not only the ones listed by hand
    assert fm.launcher_argv(["--input=a.jsonl", "--output=gs://b/o", "--full-text-allow-private-hosts=true"]) == \
        ["run", "--input", "a.jsonl", "--output=gs://b/o", "--full-text-allow-private-hosts"]
    # and the result parses: BackfillOptions gets the dates, NewsbeamOptions the lists
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.backfill import BackfillOptions
    from pipeline.options import NewsbeamOptions

    opts = PipelineOptions(argv[1:])
    assert (opts.view_as(BackfillOptions).since, opts.view_as(BackfillOptions).until) == ("2021-02-28", "2021-03-01")
    assert opts.view_as(NewsbeamOptions).input == ["gs://b/news/*.jsonl", "gs://b/rss/*.xml"]
    assert opts.view_as(NewsbeamOptions).targets == ["Armenia", "Azerbaijan=Azerbaijani,Baku"]


@pytest.mark.parametrize("args, message", [
    (["--command=report"], "command must be one of run, backfill"),
    (["--command=backfill", "--since=12/01/2020"], "bad date"),
    (["--command=backfill", "--since=2021-02-30"], "bad date"),
    (["--since=yesterday", "--until=yesterday"], "need command=backfill"),  # Beam would silently drop them
    (["--command=backfill", "--dry-run"], "only prints on the launcher"),
    (["--fetch-full-text=maybe"], "must be true or false"),
])
def test_bad_flex_parameters_are_refused(args, message):
    fm = _flex_main()
    with pytest.raises(fm.LaunchError, match=re.escape(message)):
        fm.launcher_argv(args)


def test_yesterday_is_the_utc_date_of_yesterday():
    fm = _flex_main()
    assert fm.resolve_day("yesterday") in _utc_days_ago(1)
    assert fm.resolve_day("today") in _utc_days_ago(0)
    assert fm.resolve_day("today-7") in _utc_days_ago(7)
    assert fm.resolve_day("yesterday", today=dt.date(2024, 3, 1)) == "2024-02-29"
    assert fm.resolve_day("2020-12-01") == "2020-12-01"


def test_flex_main_dispatches_to_backfill(tmp_path):
    """A real launch of deploy/flex_main.py up to job submission: DataflowRunner with Beam's --dry_run=True
    builds the backfill graph of yesterday (no job is submitted); an inverted range reaches backfill's check."""
    src = tmp_path / "news.jsonl"
    src.write_text(json.dumps({"published": min(_utc_days_ago(1)), "title": "t", "text": "Armenia and Azerbaijan "
                                                                                        "met in Moscow."}) + "\n")
    proc = run_flex(["--command=backfill", "--since=yesterday", "--until=yesterday", f"--input={src}",
                     "--output=gs://newsbeam-test-bucket/out", "--targets=Armenia", *DATAFLOW_FLEX, "--dry_run=True"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    launched = re.search(r"newsbeam flex template: newsbeam backfill --since=(\S+) --until=(\S+) ", proc.stdout)
    assert launched and launched.group(1) == launched.group(2) and launched.group(1) in _utc_days_ago(1), proc.stdout
    assert "dry run: the graph was built" in proc.stdout and "days with articles" not in proc.stdout

    proc = run_flex(["--command=backfill", "--since=today", "--until=yesterday", f"--input={src}",
                     "--output=gs://newsbeam-test-bucket/out", *DATAFLOW_FLEX, "--dry_run=True"])
    assert proc.returncode == 2 and "is after --until" in proc.stderr, proc.stdout + proc.stderr


def test_flex_template_metadata_lists_what_flex_main_accepts():
    fm = _flex_main()
    meta = json.loads((ROOT / "deploy" / "flex-template-metadata.json").read_text())
    params = {p["name"]: p for p in meta["parameters"]}
    assert len(params) == len(meta["parameters"]), "duplicate parameter names"
    assert {"command", "since", "until", "input", "output"} <= set(params)
    flags = fm.newsbeam_flags()
    for name, p in params.items():
        assert p.get("label") and p.get("helpText"), name
        assert name == "command" or name in flags, f"{name}: not an option newsbeam knows"
        assert name not in fm.LOCAL_ONLY
        for rx in p.get("regexes", []):
            re.compile(rx)
    assert params["output"].get("isOptional") is not True
    ok = {"command": ["run", "backfill"], "since": ["2020-12-01", "yesterday", "today", "today-7"],
          "fetch-full-text": ["true", "false"], "output": ["gs://b/newsbeam/"]}
    bad = {"command": ["report", "train"], "since": ["12/01/2020", "last week", "2020-12-01x"],
           "fetch-full-text": ["yes please"], "output": ["/tmp/out"]}
    for name, values in ok.items():
        assert all(re.fullmatch(params[name]["regexes"][0], v) for v in values), name
    for name, values in bad.items():
        assert not any(re.fullmatch(params[name]["regexes"][0], v) for v in values), name
    assert params["since"]["regexes"] == params["until"]["regexes"] == [fm.DAY_RE.pattern]
    # every parameter, given as the launcher gives it, becomes a newsbeam option (none passes through raw)
    sample = {"command": "backfill", "since": "yesterday", "until": "yesterday", "fetch-full-text": "true",
              "dedup-threshold": "0.8", "max-chars": "1000"}
    argv = fm.launcher_argv([f"--{n}={sample.get(n, 'x')}" for n in params])
    assert argv[0] == "backfill"
    assert all(a[2:].split("=", 1)[0] in flags for a in argv[1:] if a.startswith("--"))


def test_nightly_launch_body_is_a_backfill_of_yesterday():
    """deploy/nightly-backfill.json, the Cloud Scheduler body for flexTemplates:launch."""
    fm = _flex_main()
    body = json.loads((ROOT / "deploy" / "nightly-backfill.json").read_text())["launchParameter"]
    assert body["containerSpecGcsPath"].startswith("gs://") and body["jobName"]
    meta = {p["name"] for p in json.loads((ROOT / "deploy" / "flex-template-metadata.json").read_text())["parameters"]}
    assert set(body["parameters"]) <= meta
    argv = fm.launcher_argv([f"--{k}={v}" for k, v in body["parameters"].items()])
    assert argv[0] == "backfill"
    assert {a for a in argv if a.startswith(("--since=", "--until="))} <= \
        {f"--{k}={d}" for k in ("since", "until") for d in _utc_days_ago(1)}


def _dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or one of its parent directories wins
    (`!` re-includes); `*` stays within a path segment, `**` spans any number of them."""
    def match(pattern: str, candidate: str) -> bool:
        rx = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        rx = rx.replace(r"\?", "[^/]").replace(r"\[", "[").replace(r"\]", "]")
        return re.fullmatch(rx, candidate) is not None

    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        if any(match(pattern.lstrip("!"), p) for p in prefixes):
            excluded = not negate
    return excluded


def test_dockerignore_keeps_the_weights_and_drops_local_state():
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    dropped = [".venv/lib/python3.11/site-packages/torch/__init__.py", ".git/HEAD", "build/lib/pipeline/run.py",
               "logs/train_ner.log", "out/dt=2020-11-27/articles-00042-of-00064.jsonl", ".pytest_cache/v/x",
               ".hypothesis/examples/x", "newsbeam.egg-info/PKG-INFO", "pipeline/__pycache__/run.cpython-311.pyc",
               "transforms/__pycache__/dedup.cpython-311.pyc", "modeling/weights/__pycache__/x.pyc"]
    kept = ["setup.py", "requirements.txt", "MANIFEST.in", "deploy/flex_main.py", "pipeline/cli.py",
            "pipeline/targets.yaml", "schemas/article.schema.json", "modeling/shipping.py",
            "modeling/weights/ner/model.safetensors", "modeling/weights/ner/config.json",
            "modeling/weights/stance/newsbeam.json", "modeling/weights/stance/model.safetensors"]
    assert [p for p in dropped if not _dockerignored(p, patterns)] == []
    assert [p for p in kept if _dockerignored(p, patterns)] == []
    # and every shipped weight file in this checkout goes into the image
    weights = [str(p.relative_to(ROOT)) for p in (ROOT / "modeling" / "weights").rglob("*") if p.is_file()
               and "__pycache__" not in p.parts]
    assert weights and [w for w in weights if _dockerignored(w, patterns)] == []


def test_dockerfile_serves_as_flex_template_image():
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "ENV FLEX_TEMPLATE_PYTHON_PY_FILE=/opt/newsbeam/deploy/flex_main.py" in text
    assert "/opt/google/dataflow/python_template_launcher" in text  # the launcher binary Dataflow runs
    assert 'ENTRYPOINT ["/opt/apache/beam/boot"]' in text  # workers: the Beam SDK harness
    assert "COPY . ." in text and (ROOT / ".dockerignore").is_file()


def test_template_location_run_exits_cleanly(monkeypatch, capsys, tmp_path):
    """The flex-template launcher runs newsbeam with --template_location: Beam writes a job file and returns a
    result with no job; newsbeam must say so and exit 0 (it used to call job_id() and crash)."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import GoogleCloudOptions
    from apache_beam.runners.dataflow.dataflow_runner import DataflowPipelineResult

    from pipeline.run import main

    # offline: Beam would look up the temp bucket's soft-delete policy on GCS (it skips that only for --dry_run)
    monkeypatch.setattr(GoogleCloudOptions, "_warn_if_soft_delete_policy_enabled", lambda self, arg: None)
    # a launch that is not a dry run needs Google credentials: a gcloud user file, loaded by google.auth itself
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(user_credentials_file(tmp_path)))
    # what DataflowRunner returns when --template_location is set (a job file is written, nothing submitted)
    monkeypatch.setattr(beam.Pipeline, "run", lambda self, *a, **k: DataflowPipelineResult(None, None, None))
    rc = main(["--input", "seeds/*.txt", "--output", "gs://newsbeam-test-bucket/out", "--targets", "Armenia",
               *DATAFLOW, "--template_location", "gs://newsbeam-test-bucket/job_object"])
    assert rc == 0
    assert "template: the graph was written to gs://newsbeam-test-bucket/job_object" in capsys.readouterr().out


def test_streaming_graph_builds_for_dataflow():
    """The README's streaming-on-Dataflow command, with Beam's --dry_run=True: validated, built, not submitted."""
    proc = run_cli(["run", "--streaming", "--feeds", "https://example.org/rss.xml", "--output",
                    "gs://newsbeam-test-bucket/out", *DATAFLOW, "--dry_run=True"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "dry run: the streaming graph was built" in proc.stdout


# ------------------------------------------------------------------- Google credentials, checked up front

README_DF = ["--runner", "DataflowRunner", "--project", "PROJECT", "--region", "REGION", "--temp_location",
             "gs://BUCKET/tmp", "--staging_location", "gs://BUCKET/staging", "--torch-threads", "1"]


def user_credentials_file(tmp_path: Path) -> Path:
    """What `gcloud auth application-default login` writes (google.auth loads it without any network call)."""
    path = tmp_path / "adc.json"
    path.write_text(json.dumps({"type": "authorized_user", "client_id": "id.apps.googleusercontent.com",
                                "client_secret": "secret", "refresh_token": "token"}))
    return path


def offline_env(tmp_path: Path) -> dict:
    """No Google credentials anywhere: no variable, an empty gcloud config folder, no metadata server here."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("GOOGLE_APPLICATION_CREDENTIALS", "NO_GCE_CHECK")}
    env.update(CLOUDSDK_CONFIG=str(tmp_path / "gcloud"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


@pytest.mark.parametrize("args, reads", [
    # the README's batch command on Dataflow, as a dry run: its gs:// input is matched at launch
    (["--input", "gs://BUCKET/news/*.jsonl", "--dry_run=True"], "this dry run reads gs://BUCKET/news/*.jsonl"),
    # a real submission (local input): staging and job creation need credentials
    (["--input", "seeds/*.txt"], ""),
])
def test_dataflow_launch_without_credentials_fails_at_once_naming_them(tmp_path, args, reads):
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", *README_DF, "--output",
                           "gs://BUCKET/newsbeam/", "--targets", "Armenia", *args], cwd=ROOT, capture_output=True,
                          text=True, env=offline_env(tmp_path), timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # EXIT_FAILED: nothing was built or submitted
    err = proc.stderr
    assert "newsbeam: error: no Google credentials found: GOOGLE_APPLICATION_CREDENTIALS is not set" in err, err
    assert f"no gcloud credentials file {tmp_path / 'gcloud' / 'application_default_credentials.json'}" in err
    assert "metadata server 169.254.169.254" in err and "gcloud auth application-default login" in err
    assert reads in err
    assert "Retry with exponential backoff" not in err and "Connecting anonymously" not in err  # Beam never tried
    assert "dry run: the graph was built" not in proc.stdout and "submitted" not in proc.stdout


def test_credentials_are_needed_only_where_the_launch_uses_them():
    from pipeline.gcp_credentials import gcs_paths, needs_credentials

    reads = gcs_paths(["seeds/*.txt", "gs://b/news/*.jsonl", None, "configs/targets.yaml"])
    assert reads == ["gs://b/news/*.jsonl"]
    assert needs_credentials(dataflow=True, dry_run=False, launch_reads=[])  # submission
    assert needs_credentials(dataflow=True, dry_run=True, launch_reads=reads)  # matching gs:// at launch
    assert not needs_credentials(dataflow=True, dry_run=True, launch_reads=[])  # builds offline (tests above)
    assert not needs_credentials(dataflow=False, dry_run=False, launch_reads=reads)  # local runners: Beam's way


def test_credentials_that_exist_are_found(tmp_path, monkeypatch):
    from pipeline.gcp_credentials import check_launch_credentials

    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(user_credentials_file(tmp_path)))
    assert check_launch_credentials(True, False, []) == "Credentials"  # google.oauth2.credentials.Credentials
    assert check_launch_credentials(True, True, []) is None  # not needed: not even looked up


def test_an_unusable_credentials_file_is_named(tmp_path, monkeypatch):
    from pipeline.gcp_credentials import MissingCredentials, check_launch_credentials

    missing = tmp_path / "no-such-key.json"
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(missing))
    with pytest.raises(MissingCredentials) as err:
        check_launch_credentials(True, False, [])
    assert f"GOOGLE_APPLICATION_CREDENTIALS={missing} could not be used" in str(err.value)
    assert "metadata server" not in str(err.value)  # google.auth stops at the variable: not looked at
