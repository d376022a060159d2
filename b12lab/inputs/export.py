"""Lab-system CSV exports: bytes in any common encoding -> text lines -> records.

Exports arrive as UTF-8 (with or without BOM), Windows-1252 or UTF-16 with a
BOM (Excel's "Unicode text"), with `,`, `;` or tab delimiters and CRLF line
ends; Excel may put a `sep=;` line first. Lines are decoded one at a time, so
a stray Windows-1252 byte deep in a UTF-8 file costs that line nothing, and
memory stays flat however long the file is: a line longer than `MAX_LINE` is
skipped without being held and becomes that record's error.

Line numbers: a record is numbered by the physical line of the file on which
it ends (for a one-line record, its own line), counting every line, blank or
not, from 1 at the top of the file.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from b12lab.errors import InputError

DELIMITERS = (",", ";", "\t")
MAX_LINE = 2**20  # 1 MiB: a longer line is that record's error, never held in memory
MAX_FIELD = MAX_LINE
MAX_HEADER_LINES = 20
_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_LONE_CR = re.compile(r"(?<=\r)(?!\n)")
_SEP_LINE = re.compile(r'^"?sep=(.)"?\s*$', re.IGNORECASE)

csv.field_size_limit(MAX_FIELD)


@dataclass
class ReadStats:
    bytes_read: int = 0
    cp1252_lines: int = 0
    nul_lines: int = 0
    utf16: bool = False


class OverlongLine(str):
    """Stands for a line longer than MAX_LINE, which is skipped, never kept."""


def open_export(path: str) -> tuple[BinaryIO, str, int | None]:
    """The export's byte stream, a label for messages, and its size when known."""
    if path == "-":
        return sys.stdin.buffer, "standard input", None
    file = Path(path)
    try:
        if file.is_dir():
            raise InputError(f"export {path} is a directory", fix="give a CSV file")
        stream = file.open("rb")
        return stream, path, file.stat().st_size
    except FileNotFoundError:
        raise InputError(f"export {path} does not exist", fix="check the path") from None
    except PermissionError:
        raise InputError(
            f"export {path} cannot be read (permission denied)", fix="check the file's permissions"
        ) from None
    except OSError as error:
        raise InputError(f"cannot read export {path}: {error.strerror}") from None


def text_lines(stream: BinaryIO, stats: ReadStats, label: str = "") -> Iterator[str]:
    """Decoded lines (line ends kept, as the csv module wants them).

    A read failure is an InputError ("cannot read export ..."), never taken
    for a failure to write the output.
    """
    try:
        if not hasattr(stream, "peek"):
            stream = io.BufferedReader(stream)  # type: ignore[arg-type]
        start = stream.peek(4)[:2]
        if start in _UTF16_BOMS:
            stats.utf16 = True
            yield from _utf16_lines(stream, stats)
        else:
            yield from _byte_lines(stream, stats)
    except OSError as error:
        raise InputError(
            f"cannot read export {label or 'input'}: {error.strerror or error}",
            fix="check the file and the disk it is on",
        ) from None


def _bounded(read_line, newline):
    """Lines of at most MAX_LINE units; a longer line is drained and marked."""
    while True:
        line = read_line(MAX_LINE + 1)
        if not line:
            return
        if len(line) > MAX_LINE and not line.endswith(newline):
            # Report the line before draining the rest of it, so a caller that
            # stops here (the header of /dev/zero) never reads on without end.
            yield OverlongLine("")
            while True:
                more = read_line(MAX_LINE)
                if not more or more.endswith(newline):
                    break
            continue
        yield line


def _byte_lines(stream: BinaryIO, stats: ReadStats) -> Iterator[str]:
    first = True
    for raw in _bounded(stream.readline, b"\n"):
        if isinstance(raw, OverlongLine):
            stats.bytes_read += MAX_LINE
            yield raw
            continue
        stats.bytes_read += len(raw)
        if first:
            first = False
            if raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
        yield from decode_line(raw, stats)


def decode_line(raw: bytes, stats: ReadStats) -> Iterator[str]:
    """One line of a byte export as text: UTF-8, else Windows-1252 (counted)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
        stats.cp1252_lines += 1
    yield from _clean(text, stats)


def _utf16_lines(stream: BinaryIO, stats: ReadStats) -> Iterator[str]:
    text_stream = io.TextIOWrapper(stream, encoding="utf-16", errors="replace", newline="")
    try:
        for text in _bounded(text_stream.readline, ("\n", "\r")):
            if isinstance(text, OverlongLine):
                stats.bytes_read += 2 * MAX_LINE
                yield text
                continue
            stats.bytes_read += 2 * len(text)
            yield from _clean(text, stats)
    finally:
        with contextlib.suppress(ValueError):  # already closed by the caller
            text_stream.detach()  # the caller closes the byte stream


def _clean(text: str, stats: ReadStats) -> Iterator[str]:
    if "\x00" in text:
        stats.nul_lines += 1
        text = text.replace("\x00", "")
    if "\r" in text.rstrip("\r\n"):
        # A bare CR ends a line too (old Mac exports), as in universal newlines.
        yield from _LONE_CR.split(text)
        return
    yield text


def sniff_delimiter(header_line: str) -> str:
    """The delimiter that splits the header most outside quotes (`,` on a tie)."""
    outside = "".join(header_line.split('"')[::2])
    counts = {d: outside.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


@dataclass
class Record:
    line: int  # line number in the file where the record ends
    cells: list[str] | None  # None: the line could not be read as CSV
    problem: str | None = None


def records(lines: Iterator[str], delimiter: str, offset: int = 0) -> Iterator[Record]:
    """CSV records with their line numbers; nothing read is ever dropped.

    A quote that is never closed, or closed in the wrong place, would swallow
    the lines after it into one cell; those lines come back one record each,
    with the problem named, so every panel keeps its own record. A line longer
    than MAX_LINE comes back as a record with no cells and the problem named.
    `offset` is the number of lines before the first one given (the header).
    """
    taken: list[tuple[int, str | None]] = []  # (line number, text; None if over-long)
    count = offset  # physical lines handed to the CSV reader so far

    def feed() -> Iterator[str]:
        nonlocal count
        for line in lines:
            count += 1
            if isinstance(line, OverlongLine):
                taken.append((count, None))
                yield "\n"
                continue
            taken.append((count, line))
            yield line

    reader = csv.reader(feed(), delimiter=delimiter, strict=True)
    while True:
        taken.clear()
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            start = taken[0][0] if taken else count
            problem = f"unreadable CSV at line {start}: {error}"
            if len(taken) > 1:
                problem = (
                    f"unbalanced quote: lines {start}-{taken[-1][0]} could not "
                    "be read as CSV; each line is read on its own"
                )
            yield from _loose(taken, delimiter, problem)
            continue
        if any(text is None for _, text in taken):
            problem = None
            if len(taken) > 1:
                problem = (
                    f"unbalanced quote: lines {taken[0][0]}-{taken[-1][0]} could not be read "
                    "as CSV; each line is read on its own"
                )
            yield from _loose(taken, delimiter, problem)
            continue
        if cells and any(cell.strip() for cell in cells):
            yield Record(count, cells)


def _loose(
    taken: list[tuple[int, str | None]], delimiter: str, problem: str | None
) -> Iterator[Record]:
    """Each line of a record that could not be read as CSV, split on its own."""
    for number, raw in list(taken):
        if raw is None:
            yield Record(
                number,
                None,
                f"the line is longer than {MAX_LINE:,} characters and was not read",
            )
            continue
        loose = raw.rstrip("\r\n").replace("\r", " ").replace("\n", " ").split(delimiter)
        if any(cell.strip() for cell in loose):
            yield Record(number, loose, problem)


def looks_binary(header_line: str) -> bool:
    """A header mostly of control or replacement characters is not CSV text."""
    odd = sum(1 for ch in header_line if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\t\r\n"))
    return odd > max(2, len(header_line) // 20)


@dataclass
class Header:
    cells: list[str]  # line breaks inside a quoted cell read as one space
    delimiter: str
    lines: int  # physical lines up to and including the header's last
    text: str  # the header as written, for the binary-data check


def read_header(lines: Iterator[str], label: str) -> tuple[Header, Iterator[str]]:
    """The header record, its delimiter, the lines it took to reach it, and the rest.

    An Excel `sep=X` first line sets the delimiter. A quoted header cell may
    span lines (`"B12\n(pg/mL)"`): it is read as one cell, the break a space.
    """
    delimiter = None
    consumed = 0
    for line in lines:
        consumed += 1
        if isinstance(line, OverlongLine):
            raise InputError(
                f"export {label}: line {consumed} is longer than {MAX_LINE:,} characters "
                "before any header",
                fix="give a CSV file with a header row",
            )
        if not line.strip():
            continue
        sep = _SEP_LINE.match(line.strip("\r\n"))
        if sep and delimiter is None and sep.group(1) in DELIMITERS:
            delimiter = sep.group(1)
            continue
        parts = [line]
        while "".join(parts).count('"') % 2 and len(parts) < MAX_HEADER_LINES:
            following = next(lines, None)
            if following is None or isinstance(following, OverlongLine):
                break
            consumed += 1
            parts.append(following)
        text = "".join(parts)
        if "".join(parts).count('"') % 2:
            raise InputError(
                f"export {label}: the header row has a quote that is never closed",
                fix="close the quote in the header row",
            )
        delimiter = delimiter or sniff_delimiter(text)
        cells = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
        cells = [" ".join(cell.split()) if "\n" in cell or "\r" in cell else cell for cell in cells]
        return Header(cells, delimiter, consumed, text), lines
    raise InputError(f"export {label} is empty", fix="give a CSV file with a header row")
