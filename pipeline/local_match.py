"""Matching an --input pattern on the local disk, seeing what Beam's match leaves out.

Beam's local match walks the pattern's base folder without following links and drops, with no record, a
symbolic link to a folder, a dangling link and a link loop; it follows a link to a file wherever it points. Here
the same walk and the same pattern syntax (Beam's `translate_pattern`) give every matched path as a `Match`:
a file to read, by its real path (resolved once, so one file is one input whatever its spelling), or the
reason it is not read. A link whose target leaves the input tree (the pattern's base folder, as Beam lists it)
is not read at all, so nothing of a file outside the tree (/etc/passwd, /proc/self/environ) reaches an output.
A path given without glob characters is the user's own choice of file and is read wherever it points.
"""
from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass
from typing import Iterator

_MAGIC = re.compile(r"[*?[]")
DIRECTORY = "a directory, not a file (the pattern matched a folder; use folder/* to read it)"


@dataclass(frozen=True)
class Match:
    """One matched path: `real` and `mtime` for a file to read, or `reason` why it is not read."""
    path: str  # as matched: the name records carry
    real: str | None = None
    mtime: float | None = None
    reason: str | None = None
    link: bool = False  # reached through a symbolic link (a real file's own name is preferred to a link's)


def glob_base(pattern: str) -> str:
    """The folder Beam lists for a glob: the directory part of what comes before the first glob character."""
    return os.path.dirname(_MAGIC.split(pattern, 1)[0])


def inside(real: str, base_real: str) -> bool:
    """Whether a resolved path lies in (or is) the resolved base folder."""
    return real == base_real or real.startswith(base_real.rstrip(os.sep) + os.sep)


def _link(path: str, base_real: str | None) -> Match:
    """A symbolic link: read only when it ends at a file inside the input tree."""
    try:
        target = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return Match(path, reason=f"a symbolic link loop ({path} -> {os.readlink(path)} never ends at a file)",
                         link=True)
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return Match(path, reason=f"a dangling symbolic link (its target {os.readlink(path)} does not exist)",
                         link=True)
        return Match(path, reason=f"cannot read file: {type(exc).__name__}: {exc}", link=True)
    real = os.path.realpath(path)
    if base_real is not None and not inside(real, base_real):
        return Match(path, reason=f"a symbolic link to {real}, outside the input folder {base_real}: not read "
                                  f"(only files under the folder or glob base given to --input are read)", link=True)
    if stat.S_ISDIR(target.st_mode):
        return Match(path, reason=f"a symbolic link to a directory ({real}): not followed; give that folder to "
                                  f"--input to read it", link=True)
    return Match(path, real=real, mtime=target.st_mtime, link=True)


def classify(path: str, base_real: str | None, recursive: bool = False) -> Match | None:
    """What one matched path is; None for a real folder under a `**` pattern (walked, not an input)."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return Match(path, reason=f"cannot read file: {type(exc).__name__}: {exc}")
    if stat.S_ISLNK(st.st_mode):
        return _link(path, base_real)
    if stat.S_ISDIR(st.st_mode):
        return None if recursive else Match(path, reason=DIRECTORY)
    real = os.path.realpath(path)
    if base_real is not None and not inside(real, base_real):  # a linked parent folder (not walked, but say so)
        return Match(path, reason=f"resolves to {real}, outside the input folder {base_real}: not read")
    return Match(path, real=real, mtime=st.st_mtime)


def local_matches(pattern: str) -> Iterator[Match]:
    """Every path a local pattern matches, in sorted order within each folder (see the module docstring)."""
    if pattern.endswith(os.sep):
        pattern += "*"
    if not _MAGIC.search(pattern):
        if os.path.lexists(pattern):
            found = classify(pattern, None)
            if found is not None:
                yield found
        return
    base = glob_base(pattern)
    if not os.path.isdir(base):
        return
    base_real = os.path.realpath(base)
    matches = re.compile(_translate(pattern)).match
    recursive = "**" in pattern
    levels = pattern[len(base):].strip(os.sep).count(os.sep)  # folders below base a non-recursive glob reaches
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(base, onerror=errors.append):
        dirnames.sort()
        for name in sorted(filenames) + dirnames:
            path = os.path.join(dirpath, name)
            if matches(path):
                found = classify(path, base_real, recursive)
                if found is not None:
                    yield found
        level = 0 if dirpath == base else dirpath[len(base):].strip(os.sep).count(os.sep) + 1
        if not recursive and level >= levels:
            dirnames.clear()
    for exc in errors:  # a folder that could not be listed: its files would vanish unrecorded
        yield Match(exc.filename or base, reason=f"cannot list the folder: {type(exc).__name__}: {exc.strerror}")


def _translate(pattern: str) -> str:
    from apache_beam.io.filesystem import FileSystem

    return FileSystem.translate_pattern(pattern)
