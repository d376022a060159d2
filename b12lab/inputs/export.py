"""Lab-system CSV exports: bytes in any common encoding -> text lines -> records.

Exports arrive as UTF-8 (with or without BOM) or Windows-1252, with `,`, `;`
or tab delimiters and CRLF line ends. Lines are decoded one at a time, so a
stray Windows-1252 byte deep in a UTF-8 file costs that line nothing, and
memory stays flat however long the file is.
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from b12lab.errors import InputError

DELIMITERS = (",", ";", "\t")
MAX_FIELD = 2**24  # 16 MB: an oversized cell is reported, not a crash
_BOM = b"\xef\xbb\xbf"
_LONE_CR = re.compile(r"(?<=\r)(?!\n)")

csv.field_size_limit(MAX_FIELD)


@dataclass
class ReadStats:
    bytes_read: int = 0
    cp1252_lines: int = 0
    nul_lines: int = 0


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


def text_lines(stream: BinaryIO, stats: ReadStats) -> Iterator[str]:
    """Decoded lines (line ends kept, as the csv module wants them)."""
    first = True
    for raw in stream:
        stats.bytes_read += len(raw)
        if first:
            first = False
            if raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")
            stats.cp1252_lines += 1
        if "\x00" in text:
            stats.nul_lines += 1
            text = text.replace("\x00", "")
        if "\r" in text.rstrip("\r\n"):
            # A bare CR ends a line too (old Mac exports), as in universal newlines.
            yield from _LONE_CR.split(text)
            continue
        yield text


def sniff_delimiter(header_line: str) -> str:
    """The delimiter that splits the header line most (`,` on a tie)."""
    counts = {d: header_line.count(d) for d in DELIMITERS}
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
    with the problem named, so every panel keeps its own record. `offset` is
    the number of lines before the first one given (the header).
    """
    taken: list[str] = []

    def feed() -> Iterator[str]:
        for line in lines:
            taken.append(line)
            yield line

    reader = csv.reader(feed(), delimiter=delimiter, strict=True)
    while True:
        start = reader.line_num + offset
        taken.clear()
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            problem = f"unreadable CSV at line {start + 1}: {error}"
            if len(taken) > 1:
                problem = (
                    f"unbalanced quote: lines {start + 1}-{start + len(taken)} could not "
                    "be read as CSV; each line is read on its own"
                )
            for offset, raw in enumerate(list(taken)):
                loose = raw.rstrip("\r\n").replace("\r", " ").replace("\n", " ").split(delimiter)
                if any(cell.strip() for cell in loose):
                    yield Record(start + offset + 1, loose, problem)
            continue
        if cells and any(cell.strip() for cell in cells):
            yield Record(reader.line_num + offset, cells)


def looks_binary(header_line: str) -> bool:
    """A header mostly of control or replacement characters is not CSV text."""
    odd = sum(1 for ch in header_line if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\t\r\n"))
    return odd > max(2, len(header_line) // 20)


def read_header(lines: Iterator[str], label: str) -> tuple[str, str, int, Iterator[str]]:
    """The header line, its delimiter, the lines it took to reach it, and the rest."""
    for consumed, line in enumerate(lines, start=1):
        if line.strip():
            return line, sniff_delimiter(line), consumed, lines
    raise InputError(f"export {label} is empty", fix="give a CSV file with a header row")
