"""Whole-file writes through Beam's FileSystems (local, gs://, s3://): the one atomic writer of the project."""
from __future__ import annotations

import uuid

from apache_beam.io.filesystems import FileSystems


def write_atomically(path: str, lines: list[str] | bytes) -> None:
    """Write to a temporary sibling, then rename over the target (the rename replaces an older file), so a reader
    or a crash never meets a half-written file.

    Temporary files left by an interrupted earlier run for the same target are removed, so a rerun leaves
    exactly what a clean run leaves. `lines` are written one per line (UTF-8); bytes (a Parquet file) as given.
    """
    directory, name = path.rsplit("/", 1)
    if not FileSystems.exists(directory):
        try:
            FileSystems.mkdirs(directory)
        except OSError:  # Beam's local mkdirs refuses an existing folder: another worker made it since the check
            if not FileSystems.exists(directory):
                raise
    stale = [m.path for m in FileSystems.match([f"{directory}/.tmp-*-{name}"])[0].metadata_list]
    if stale:
        FileSystems.delete(stale)
    tmp = f"{directory}/.tmp-{uuid.uuid4().hex}-{name}"
    with FileSystems.create(tmp) as fh:
        if isinstance(lines, bytes):
            fh.write(lines)
        else:
            for line in lines:
                fh.write(line.encode("utf-8") + b"\n")
    FileSystems.rename([tmp], [path])  # replaces the old file in one step (local rename, GCS/S3 copy-over)
