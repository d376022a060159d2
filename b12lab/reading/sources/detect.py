"""Which kind of input a file is, from its first bytes alone.

Content decides, not the file name: laboratory systems name their files
whatever they like (`.txt`, `.dat`, `.hl7`, no extension at all).
"""

from __future__ import annotations

import re
from pathlib import PurePath

from b12lab.vocab import InputFormat, InputKind

DETECT_BYTES = 65536  # how much of an input detection looks at
FORMATS = ("yaml", "json-panel", "fhir-json", "fhir-ndjson", "hl7v2", "csv", "parquet", "arrow")
_HL7_START = re.compile(rb"^(?:MSH|FHS|BHS)[^A-Za-z0-9\s]")
_RESOURCE_TYPE = re.compile(rb'"resourceType"\s*:\s*"[A-Za-z]+"')
_CSV_HEADER = re.compile(r"^[^:#{}\[\]]*[,;\t]")


def detect_format(first_bytes: bytes) -> str:
    """One of FORMATS for a file that begins with `first_bytes` (a few KiB are enough).

    The sample may end in the middle of a line or of a JSON document; only
    complete lines are trusted where it matters.
    """
    if first_bytes.startswith(b"PAR1"):
        return "parquet"
    if first_bytes.startswith(b"ARROW1"):
        return "arrow"
    head = first_bytes.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n\x0b")
    if _HL7_START.match(head):
        return "hl7v2"
    if head.startswith(b"{"):
        return _json_kind(head)
    if head.startswith(b"["):
        return "json-panel"
    first_line = _first_content_line(head)
    if first_line is not None and _CSV_HEADER.match(first_line):
        return "csv"
    return "yaml"


def _json_kind(head: bytes) -> str:
    """FHIR (a resource per line: NDJSON; else a document) or a JSON panel file.

    NDJSON is told from a document by its structure (`json_text.layout`), never
    by the length of its first line. When the sample does not tell (a first
    line longer than the sample) the answer is "fhir-json", and the FHIR reader
    looks at the whole first line (`fhir.read_fhir`).
    """
    from b12lab.inputs.json_text import layout

    if not _RESOURCE_TYPE.search(head):
        return "json-panel"
    return "fhir-ndjson" if layout(head, complete=False) == "ndjson" else "fhir-json"


def _first_content_line(head: bytes) -> str | None:
    text = head[:4096].decode("utf-8", errors="replace")
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped
    return None


# Table files by name, when their first bytes do not tell (an Arrow IPC stream).
TABLE_EXTENSIONS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "arrow",
    ".arrows": "arrow",
    ".ipc": "arrow",
    ".feather": "arrow",
}
ARROW_STREAM_START = b"\xff\xff\xff\xff"  # the continuation marker before each IPC message


def detect_input(first_bytes: bytes, label: str, input_format: str = "auto") -> InputKind:
    """What an input is: the one place every command asks.

    --input-format decides when given; else the first bytes (Parquet and Arrow
    magic, an Arrow IPC stream's first marker, then `detect_format`), and for a
    file whose bytes look like no table, a Parquet or Arrow file name.
    `label` is the file's path, or "standard input".
    """
    forced = InputFormat(input_format).kind
    if forced is not None:
        return forced
    if first_bytes.startswith(ARROW_STREAM_START):
        return InputKind.ARROW
    found = InputKind(detect_format(first_bytes))
    if found.is_table or label == "standard input":
        return found
    by_name = TABLE_EXTENSIONS.get(PurePath(label).suffix.lower())
    return InputKind(by_name) if by_name else found
