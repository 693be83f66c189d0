"""Reading one input file whole, decompressed, up to a size limit.

Beam's `CompressedFile.read()` returns at most its 16 MiB buffer, so one `read()` silently cut larger
decompressed inputs; and it decompresses a whole 16 MiB compressed block at once, so a gzip bomb (1 MB -> 1 GiB)
takes its full size in memory before anything can refuse it. Here the raw bytes are opened uncompressed and
decompressed with the standard readers, which never return more than they are asked for: a file is read in
chunks until its end, and reading stops as soon as it passes the limit.
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from typing import BinaryIO, Protocol

MAX_INPUT_BYTES = 256 * 1024 * 1024  # per input file, decompressed: one file is one element held in memory
CHUNK_BYTES = 1024 * 1024  # what one read asks for, so memory is bounded by the limit plus one chunk


class InputTooLarge(ValueError):
    """An input larger than the limit once decompressed; the message is its dead-letter reason."""


class _Reader(Protocol):
    def read(self, size: int) -> bytes: ...


class _Inflate:
    """Beam's `deflate` (a zlib stream) as a reader whose read(n) never returns more than n bytes."""

    def __init__(self, fh: BinaryIO):
        self.fh, self.dec = fh, zlib.decompressobj()

    def read(self, size: int) -> bytes:
        while not self.dec.eof:
            data = self.dec.unconsumed_tail or self.fh.read(64 * 1024)
            if not data:
                raise EOFError("compressed file ended before the end-of-stream marker was reached")
            out = self.dec.decompress(data, size)
            if out:
                return out
        return b""


def decompressing(fh: BinaryIO, compression: str) -> _Reader:
    """A reader of the decompressed bytes of `fh` for a Beam compression type name ('gzip', 'bzip2', 'lzma',
    'zstd', 'deflate', 'uncompressed'). Concatenated gzip/bzip2/zstd members are read as one stream, as Beam does."""
    if compression == "uncompressed":
        return fh
    if compression == "gzip":
        return gzip.GzipFile(fileobj=fh, mode="rb")
    if compression == "bzip2":
        return bz2.BZ2File(fh)
    if compression == "lzma":
        return lzma.LZMAFile(fh)
    if compression == "zstd":
        import zstandard

        # the window cap Beam uses (a larger window would need that much memory)
        return zstandard.ZstdDecompressor(max_window_size=2**31).stream_reader(fh, read_across_frames=True)
    if compression == "deflate":
        return _Inflate(fh)
    raise ValueError(f"unsupported compression {compression!r}")


def too_large(limit: int, compressed: bool) -> str:
    """The dead-letter reason of a file over `limit` bytes."""
    return (f"file larger than {limit / 2**20:g} MiB ({limit:,} bytes){' once decompressed' if compressed else ''}, "
            f"the limit per input file (MAX_INPUT_BYTES): not read; split it into smaller files")


def read_limited(fh: BinaryIO, compression: str = "uncompressed", limit: int = MAX_INPUT_BYTES) -> bytes:
    """Every byte of `fh`, decompressed, read in chunks until the end; InputTooLarge as soon as more than
    `limit` bytes came out (what was read is dropped, so a bomb costs at most `limit` plus one chunk)."""
    reader = decompressing(fh, compression)
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = reader.read(min(CHUNK_BYTES, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            chunks.clear()
            raise InputTooLarge(too_large(limit, compression != "uncompressed"))
        chunks.append(chunk)
