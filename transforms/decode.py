"""Bytes of one input -> text: per line for JSONL, per file for the formats that are one document.

A JSONL line is a record of its own, so one invalid byte or a NUL in it costs that line only; the other lines
are decoded and read. A seed file is one record, so it is decoded whole. Feeds are read from their bytes by
feedparser (which honours the document's declared encoding) and do not come here.
"""
from __future__ import annotations

from typing import Iterator

_TEXT_BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"),
              (b"\xfe\xff", "utf-16"))
_UTF8_BOM = b"\xef\xbb\xbf"


class DecodeError(ValueError):
    """Bytes that are not the text expected; the message is the dead-letter reason."""


def decode_text(data: bytes) -> str:
    """Bytes -> str: UTF-8 (BOM or not), or UTF-16/32 announced by a BOM; binary and other encodings are refused
    with a clear reason (guessing an 8-bit code page would silently corrupt names)."""
    for bom, codec in _TEXT_BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as exc:
                raise DecodeError(f"invalid {codec.upper()} text (byte offset {exc.start})") from None
    if b"\x00" in data[:4096]:
        raise DecodeError("binary content (NUL bytes); expected UTF-8 text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None


def decode_line(line: bytes) -> str:
    """One line of a UTF-8 file -> str, or DecodeError naming the bad byte and its column."""
    nul = line.find(b"\x00")
    if nul >= 0:
        raise DecodeError(f"NUL byte in the line (at column {nul + 1}): binary content, expected UTF-8 text")
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"not valid UTF-8 (byte 0x{line[exc.start]:02x} at column {exc.start + 1} of the line)"
                          ) from None


def text_lines(data: bytes) -> Iterator[tuple[int, str | DecodeError]]:
    """(line number from 1, the line's text or its DecodeError) for every line of a JSONL file that is not blank.

    UTF-8 is decoded line by line (lines are split on the byte 0x0A, which no other UTF-8 character contains),
    without a copy of the whole file. UTF-16/32 (announced by a BOM) cannot be split before decoding: such a
    file is decoded whole, and one DecodeError numbered 0 stands for it when that fails."""
    if data.startswith(tuple(bom for bom, _ in _TEXT_BOMS)):
        try:
            text = decode_text(data)
        except DecodeError as exc:
            yield 0, exc
            return
        for n, line in enumerate(text.split("\n"), start=1):
            if line.strip():
                yield n, line
        return
    start = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    n = 0
    while start <= len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        n += 1
        raw = data[start:end]
        start = end + 1
        if not raw.strip():
            continue
        try:
            line = decode_line(raw)
        except DecodeError as exc:
            yield n, exc
            continue
        if line.strip():
            yield n, line
