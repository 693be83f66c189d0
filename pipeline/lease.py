"""One run at a time per output root: a lease at `<root>/_state/lease` (pipeline.layout.lease_file).

Why: two runs merging into one root each read the dedup index and the day partitions without seeing the other's
writes, so both keep near copies, and exact copies merge into one line while both runs count it written; each
summary says "every record accounted for" and the root holds fewer. So a `run` or `backfill` (batch or
--streaming) takes the root's lease before it reads or writes anything and releases it when it ends, on failure
and on Ctrl-C too; a second run is refused at launch (exit 4, pipeline.commands.EXIT_BUSY) with the holder named.

The lease is one small JSON object, created only if absent:
- local root: `os.open(O_CREAT | O_EXCL)`, every change under an `flock` of `_state/lease.lock` (a
  compare-and-swap on the file's content, so a takeover cannot remove a lease another run just took);
- gs://: google-cloud-storage with `if_generation_match` (0 to create; the generation read to renew, take over
  or release);
- s3://: boto3 `put_object(IfNoneMatch="*")` to create, `IfMatch=<etag>` to renew or take over;
- any other Beam filesystem: no atomic create-if-absent exists there, so the lease is checked, then written
  (a warning says so): two runs started within the same moment could both take it.

A lease carries an expiry: the launcher renews it every TTL / 4 while the run goes (a thread), so a run that
stops without releasing it (killed, machine gone) leaves a lease that expires; a lease of this host whose pid
is not running (or is another process now) is stale at once. A stale lease is taken over, saying so. A Dataflow
streaming job outlives its launcher: its lease has no expiry and names the job; once the job is drained or
cancelled, `--break-lease` (or deleting the file) frees the root.

Pure logic and files, no pipeline: tests/test_run_lease.py runs it on local files without Beam.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass, replace
from typing import Callable, Iterator, Protocol

from .layout import lease_file

log = logging.getLogger("newsbeam.lease")
TTL = 120.0  # seconds a lease holds without renewal
RENEW_EVERY = TTL / 4
ATTEMPTS = 5  # create / read / take over rounds before a contended root counts as busy


@dataclass(frozen=True)
class Holder:
    """Who holds a root: what a refused run prints, and what staleness is judged on."""

    kind: str  # "newsbeam run", "newsbeam backfill", "newsbeam run --streaming", ...
    host: str
    pid: int
    started: float  # epoch seconds
    expires: float | None  # epoch seconds; None: until released (a Dataflow streaming job)
    token: str  # this acquisition's own id: a holder recognises its lease by it
    pid_started: str | None = None  # the process's start time (Linux /proc): a reused pid is another process
    job: str | None = None  # the Dataflow job that holds the root after its launcher exited

    def to_bytes(self) -> bytes:
        return (json.dumps(asdict(self), sort_keys=True) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Holder | None:
        """The holder, or None for a file that is not a lease (empty, truncated, foreign)."""
        try:
            raw = json.loads(data.decode())
            return cls(kind=str(raw["kind"]), host=str(raw["host"]), pid=int(raw["pid"]),
                       started=float(raw["started"]),
                       expires=None if raw.get("expires") is None else float(raw["expires"]),
                       token=str(raw["token"]), pid_started=raw.get("pid_started"), job=raw.get("job"))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, AttributeError):
            return None

    def describe(self, now: float) -> str:
        """`newsbeam run on host h, pid 123, started 2024-05-01 10:00:00 UTC, lease expires in 87 s`."""
        text = f"{self.kind} on host {self.host}, pid {self.pid}, started {utc(self.started)}"
        if self.job:
            text += f", Dataflow job {self.job}"
        if self.expires is None:
            return text + ", held until released"
        left = self.expires - now
        return text + (f", lease expires in {left:.0f} s" if left > 0 else f", lease expired {-left:.0f} s ago")


def utc(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


class RootBusy(RuntimeError):
    """Another run holds the output root: refused before anything is read or written."""

    def __init__(self, root: str, path: str, holder: Holder | None, now: float, why: str = ""):
        self.root, self.path, self.holder = root, path, holder
        who = holder.describe(now) if holder else f"an unreadable lease ({why or 'not a newsbeam lease'})"
        if holder and holder.job:
            fix = ("once that job is drained or cancelled, rerun with --break-lease (or delete the lease file)")
        else:
            fix = ("wait for it to end; if it is gone, rerun with --break-lease (or delete the lease file); "
                   "a lease left by a killed run is taken over once it expires, at once on its own host")
        super().__init__(f"output root {root} is busy: held by {who} (lease {path}); {fix}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def process_started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid from the holder."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
        return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the parenthesised command name
    except (OSError, IndexError):
        return None


def stale_reason(holder: Holder, now: float, host: str, alive: Callable[[int], bool] = pid_alive,
                 started_of: Callable[[int], str | None] = process_started) -> str | None:
    """Why a lease no longer holds (None: it does). Expired; or taken on this host by a process that is gone.
    A lease without expiry (a Dataflow streaming job; its launcher exited by design) is never stale."""
    if holder.expires is None:
        return None
    if holder.expires <= now:
        return f"expired {now - holder.expires:.0f} s ago ({holder.describe(now)})"
    if holder.host == host:
        if not alive(holder.pid):
            return f"pid {holder.pid} is not running on {host} ({holder.describe(now)})"
        current = started_of(holder.pid) if holder.pid_started else None
        if current is not None and current != holder.pid_started:
            return f"pid {holder.pid} on {host} is another process now ({holder.describe(now)})"
    return None


class Store(Protocol):
    """One object with create-if-absent and compare-and-swap by version (what each filesystem offers)."""

    path: str
    atomic: bool

    def create(self, data: bytes) -> object | None: ...  # its version, or None: it exists
    def read(self) -> tuple[bytes, object, float | None] | None: ...  # (data, version, modified) or None
    def replace(self, data: bytes, version: object) -> object | None: ...  # None: changed since `version`
    def delete(self, version: object) -> bool: ...


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalStore:
    """A local file: O_CREAT | O_EXCL to create; every read and change under an flock of a lock file beside it,
    so a change is a compare-and-swap on the content (a lock dies with its process: nothing to clean up)."""

    atomic = True

    def __init__(self, path: str):
        self.path = path
        self.lock_path = path + ".lock"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock

    def _current(self) -> bytes | None:
        try:
            with open(self.path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def create(self, data: bytes) -> object | None:
        with self._locked():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return None
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            return _digest(data)

    def read(self) -> tuple[bytes, object, float | None] | None:
        with self._locked():
            data = self._current()
            if data is None:
                return None
            return data, _digest(data), os.stat(self.path).st_mtime

    def replace(self, data: bytes, version: object) -> object | None:
        with self._locked():
            current = self._current()
            if current is None or _digest(current) != version:
                return None
            tmp = f"{self.path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            return _digest(data)

    def delete(self, version: object) -> bool:
        with self._locked():
            current = self._current()
            if current is None or _digest(current) != version:
                return False
            os.unlink(self.path)
            return True


class GcsStore:
    """A gs:// object: generation preconditions make create, renew, takeover and release atomic."""

    atomic = True

    def __init__(self, path: str, project: str | None = None):
        from google.cloud import storage  # installed with apache-beam[gcp]

        self.path = path
        bucket, _, self.name = path[len("gs://"):].partition("/")
        self.bucket = storage.Client(project=project).bucket(bucket)

    def _write(self, data: bytes, generation: int) -> object | None:
        from google.api_core.exceptions import NotFound, PreconditionFailed

        blob = self.bucket.blob(self.name)
        try:
            blob.upload_from_string(data, content_type="application/json", if_generation_match=generation)
        except (PreconditionFailed, NotFound):
            return None
        return blob.generation

    def create(self, data: bytes) -> object | None:
        return self._write(data, 0)

    def read(self) -> tuple[bytes, object, float | None] | None:
        from google.api_core.exceptions import NotFound, PreconditionFailed

        for _ in range(ATTEMPTS):
            blob = self.bucket.get_blob(self.name)
            if blob is None:
                return None
            try:
                data = blob.download_as_bytes(if_generation_match=blob.generation)
            except (NotFound, PreconditionFailed):  # replaced or removed since: read again
                continue
            return data, blob.generation, blob.updated.timestamp() if blob.updated else None
        return None

    def replace(self, data: bytes, version: object) -> object | None:
        return self._write(data, int(version))  # type: ignore[call-overload]

    def delete(self, version: object) -> bool:
        from google.api_core.exceptions import NotFound, PreconditionFailed

        try:
            self.bucket.blob(self.name).delete(if_generation_match=int(version))  # type: ignore[call-overload]
        except (PreconditionFailed, NotFound):
            return False
        return True


class S3Store:
    """An s3:// object: conditional writes (If-None-Match: * to create, If-Match: <etag> to renew or take over).
    A release compares the ETag, then deletes: a lease is only removed by its holder or after it expired."""

    atomic = True
    REFUSED = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")

    def __init__(self, path: str, client_kwargs: dict | None = None):
        import boto3  # what Beam's own S3 filesystem needs too (apache-beam[aws])

        self.path = path
        self.bucket, _, self.key = path[len("s3://"):].partition("/")
        self.client = boto3.client("s3", **(client_kwargs or {}))

    def _put(self, data: bytes, **condition: str) -> object | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.put_object(Bucket=self.bucket, Key=self.key, Body=data, **condition)["ETag"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in self.REFUSED:
                return None
            raise

    def create(self, data: bytes) -> object | None:
        return self._put(data, IfNoneMatch="*")

    def read(self) -> tuple[bytes, object, float | None] | None:
        from botocore.exceptions import ClientError

        try:
            got = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return got["Body"].read(), got["ETag"], got["LastModified"].timestamp()

    def replace(self, data: bytes, version: object) -> object | None:
        return self._put(data, IfMatch=str(version))

    def delete(self, version: object) -> bool:
        found = self.read()
        if found is None or found[1] != version:
            return False
        self.client.delete_object(Bucket=self.bucket, Key=self.key)
        return True


class CheckThenWriteStore:
    """Any other Beam filesystem (hdfs://, azfs://, ...): it has no create-if-absent, so the lease is checked,
    then written. Not atomic: two runs started within the same moment could both take the lease."""

    atomic = False

    def __init__(self, path: str):
        self.path = path

    def _current(self) -> bytes | None:
        from apache_beam.io.filesystems import FileSystems

        if not FileSystems.exists(self.path):
            return None
        with FileSystems.open(self.path) as f:
            return f.read()

    def _write(self, data: bytes) -> None:
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.create(self.path) as f:
            f.write(data)

    def create(self, data: bytes) -> object | None:
        if self._current() is not None:
            return None
        self._write(data)
        return _digest(data)

    def read(self) -> tuple[bytes, object, float | None] | None:
        data = self._current()
        return None if data is None else (data, _digest(data), None)

    def replace(self, data: bytes, version: object) -> object | None:
        current = self._current()
        if current is None or _digest(current) != version:
            return None
        self._write(data)
        return _digest(data)

    def delete(self, version: object) -> bool:
        from apache_beam.io.filesystems import FileSystems

        current = self._current()
        if current is None or _digest(current) != version:
            return False
        FileSystems.delete([self.path])
        return True


def store_for(path: str, project: str | None = None, s3_client_kwargs: dict | None = None) -> Store:
    """The store that gives `path`'s filesystem the most atomic lease it can have."""
    scheme = path.split("://", 1)[0] if "://" in path else ""
    if not scheme:
        return LocalStore(path)
    if scheme == "gs":
        return GcsStore(path, project)
    if scheme == "s3":
        return S3Store(path, s3_client_kwargs)
    log.warning("%s:// has no atomic create-if-absent: the lease %s is checked, then written, so two runs started "
                "within the same moment could both take it", scheme, path)
    return CheckThenWriteStore(path)


class Lease:
    """A lease this process holds: renewed by keep_alive(), released by release(); `lost` says why it is no
    longer this run's (another run took it over after it expired, or removed it with --break-lease)."""

    def __init__(self, store: Store, holder: Holder, version: object, ttl: float = TTL):
        self.store, self.holder, self.version, self.ttl = store, holder, version, ttl
        self.lost: str | None = None
        self._mutex = threading.Lock()

    @property
    def path(self) -> str:
        return self.store.path

    def _swap(self, holder: Holder) -> bool:
        with self._mutex:
            if self.lost:
                return False
            version = self.store.replace(holder.to_bytes(), self.version)
            if version is None:
                found = self.store.read()
                other = Holder.from_bytes(found[0]) if found else None
                self.lost = (f"{other.describe(time.time())} holds it now" if other and other.token != holder.token
                             else "the lease was removed")
                log.error("lost the lease %s: %s", self.path, self.lost)
                return False
            self.holder, self.version = holder, version
            return True

    def renew(self, now: float | None = None) -> bool:
        """Push the expiry TTL seconds on; False (and `lost` set) when the lease is no longer this run's."""
        if self.holder.expires is None:
            return True
        return self._swap(replace(self.holder, expires=(time.time() if now is None else now) + self.ttl))

    def hand_to_job(self, job: str) -> bool:
        """The run goes on as a job that outlives this launcher: the lease names it and no longer expires."""
        return self._swap(replace(self.holder, expires=None, job=job))

    def release(self) -> None:
        """Remove the lease if it is still this run's (a lost one belongs to someone else now)."""
        with self._mutex:
            if not self.lost and not self.store.delete(self.version):
                log.warning("lease %s was not this run's any more when the run ended", self.path)

    @contextlib.contextmanager
    def keep_alive(self, every: float | None = None) -> Iterator[Lease]:
        """Renew every TTL / 4 on a thread while the block runs."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(every or self.ttl / 4):
                try:
                    if not self.renew():
                        return
                except Exception as exc:  # a blip (network, disk): the next beat tries again before expiry
                    log.warning("could not renew the lease %s: %s: %s", self.path, type(exc).__name__, exc)

        thread = threading.Thread(target=beat, name="newsbeam-lease", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()


def acquire(root: str, kind: str, *, break_lease: bool = False, ttl: float = TTL, store: Store | None = None,
            clock: Callable[[], float] = time.time, host: str | None = None, pid: int | None = None) -> Lease:
    """Take the lease of `root` for a run of `kind`; RootBusy if a live run holds it. A stale lease (expired,
    or of a gone process on this host) is taken over, and so is any lease with `break_lease`; both are logged."""
    store = store or store_for(lease_file(root))
    host = host or socket.gethostname()
    pid = os.getpid() if pid is None else pid
    now = clock()
    mine = Holder(kind=kind, host=host, pid=pid, started=now, expires=now + ttl, token=uuid.uuid4().hex,
                  pid_started=process_started(pid))
    holder: Holder | None = None
    for _ in range(ATTEMPTS):
        version = store.create(mine.to_bytes())
        if version is not None:
            return Lease(store, mine, version, ttl)
        found = store.read()
        if found is None:  # released in between: create again
            continue
        data, version, modified = found
        holder, now = Holder.from_bytes(data), clock()
        if holder is not None and holder.token == mine.token:  # our own create, retried by the client
            return Lease(store, mine, version, ttl)
        if break_lease:
            why: str | None = "--break-lease"
        elif holder is None:  # not a lease: an interrupted create (local) once it is older than a TTL
            why = "an unreadable lease older than its TTL" if modified is not None and modified + ttl < now else None
        else:
            why = stale_reason(holder, now, host)
        if why is None:
            raise RootBusy(root, store.path, holder, now, why="not a newsbeam lease, or one being written")
        taken = store.replace(mine.to_bytes(), version)
        if taken is not None:
            log.warning("took over the lease %s: %s", store.path, why)
            return Lease(store, mine, taken, ttl)
    raise RootBusy(root, store.path, holder, clock(), why="contended: it changed on every attempt")
