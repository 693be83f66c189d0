"""Google credentials for a Dataflow launch, checked before anything is built.

Without credentials Beam does not stop: it retries `google.auth.default()` with backoff, then "connects
anonymously" and retries each gs:// match, so an offline `--dry_run=True` over gs:// inputs spent minutes before
an unrelated-looking error. Asking google.auth's public API once (`google.auth.default()`, a second or two when
nothing is configured) and naming what was looked for turns that into an immediate, actionable error.

A Dataflow dry run that reads nothing from gs:// at launch (local inputs and configs) needs no credentials and is
not checked: building and serialising the graph works offline.
"""
from __future__ import annotations

import logging
import os
from typing import Iterable, Optional

METADATA_SERVER = "169.254.169.254 (metadata.google.internal)"
ADC_HELP = ("run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service "
            "account key file, or launch from a Google Cloud VM whose service account may run Dataflow")


class MissingCredentials(RuntimeError):
    """No Google credentials where a Dataflow launch needs them; the message names each place looked in."""


def gcs_paths(values: Iterable[Optional[str]]) -> list[str]:
    """The gs:// paths among `values` (the launch reads them: globs are matched, files opened)."""
    return [v for v in values if v and v.startswith("gs://")]


def needs_credentials(dataflow: bool, dry_run: bool, launch_reads: list[str]) -> bool:
    """A Dataflow submission always needs them (staging, job creation); a dry run only to read gs:// paths."""
    return dataflow and (not dry_run or bool(launch_reads))


def gcloud_adc_path() -> str:
    """Where `gcloud auth application-default login` writes its file (CLOUDSDK_CONFIG honoured)."""
    config = os.environ.get("CLOUDSDK_CONFIG")
    if not config:
        base = os.environ.get("APPDATA") if os.name == "nt" else os.path.expanduser("~/.config")
        config = os.path.join(base or "", "gcloud")
    return os.path.join(config, "application_default_credentials.json")


def find_credentials() -> str:
    """A short description of the credentials google.auth finds; MissingCredentials naming what is missing.

    google.auth's own warnings (one per metadata-server attempt) are silenced here: the error says it once."""
    try:
        import google.auth
        import google.auth.exceptions
    except ImportError as exc:  # no apache-beam[gcp]: DataflowRunner cannot run anyway; say so
        raise MissingCredentials(f"DataflowRunner needs apache-beam[gcp] (google-auth): {exc}") from None
    quiet = [logging.getLogger(n) for n in ("google.auth", "google.auth._default",
                                             "google.auth.compute_engine._metadata")]
    levels = [lg.level for lg in quiet]
    for lg in quiet:
        lg.setLevel(logging.ERROR)
    try:
        credentials, project = google.auth.default()
    except google.auth.exceptions.DefaultCredentialsError as exc:
        raise MissingCredentials(missing_message(str(exc))) from None
    finally:
        for lg, level in zip(quiet, levels):
            lg.setLevel(level)
    return f"{type(credentials).__name__}" + (f" (project {project})" if project else "")


def missing_message(reason: str) -> str:
    """What google.auth looked for and did not find (in its order: the variable, gcloud's file, the metadata
    server; it stops at the first that is set but unusable), and how to fix it."""
    env = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    adc = gcloud_adc_path()
    if env:
        looked = [f"GOOGLE_APPLICATION_CREDENTIALS={env} could not be used"]
    elif os.path.exists(adc):
        looked = ["GOOGLE_APPLICATION_CREDENTIALS is not set", f"{adc} could not be used"]
    else:
        no_check = " (NO_GCE_CHECK=true)" if os.environ.get("NO_GCE_CHECK") == "true" else ""
        looked = ["GOOGLE_APPLICATION_CREDENTIALS is not set", f"no gcloud credentials file {adc}",
                  f"metadata server {METADATA_SERVER} unreachable{no_check}"]
    first = " ".join(reason.split())[:300]
    return (f"no Google credentials found: {'; '.join(looked)} (google.auth: {first}). DataflowRunner needs them "
            f"to submit a job or to read gs:// at launch: {ADC_HELP}")


def check_launch_credentials(dataflow: bool, dry_run: bool, launch_reads: list[str]) -> Optional[str]:
    """Raise MissingCredentials when this launch needs credentials and none are found; else return what was
    found (None when none were needed)."""
    if not needs_credentials(dataflow, dry_run, launch_reads):
        return None
    try:
        return find_credentials()
    except MissingCredentials as exc:
        if dry_run:
            raise MissingCredentials(f"{exc} (this dry run reads {', '.join(launch_reads[:3])})") from None
        raise
