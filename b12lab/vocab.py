"""The words batch runs are made of, as enums: what an input is, how an export is laid
out, which format the records are written in.

Each member is its text (`Layout.WIDE == "wide"`, `f"{OutputFormat.CSV}"` is
`csv`), so options given as text (the CLI, the table API's keyword arguments)
compare and print as before. What an input is, is found in one place:
`b12lab.reading.sources.detect.detect_input`.

This module imports nothing heavy: the CLI builds its choices from it.
"""

from __future__ import annotations

from enum import Enum


class Word(str, Enum):
    """An enum whose members are, print and format as their text."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    __hash__ = str.__hash__  # a member finds what its text finds in a dict

    @classmethod
    def choices(cls) -> str:
        return ", ".join(member.value for member in cls)


class InputKind(Word):
    """What an input is (found from its first bytes, its name, or --input-format)."""

    CSV = "csv"
    PARQUET = "parquet"
    ARROW = "arrow"
    FHIR = "fhir"  # FHIR JSON, forced: a document or NDJSON, as the reader finds
    FHIR_JSON = "fhir-json"
    FHIR_NDJSON = "fhir-ndjson"
    HL7V2 = "hl7v2"
    YAML = "yaml"  # a panel file (or text that is no export)
    JSON_PANEL = "json-panel"

    @property
    def is_table(self) -> bool:
        """Parquet or Arrow IPC: columns and record batches."""
        return self in (InputKind.PARQUET, InputKind.ARROW)

    @property
    def is_message(self) -> bool:
        """A laboratory message file (FHIR, HL7 v2): observations, no export columns."""
        return self in (
            InputKind.FHIR,
            InputKind.FHIR_JSON,
            InputKind.FHIR_NDJSON,
            InputKind.HL7V2,
        )

    @property
    def has_columns(self) -> bool:
        """An export with columns of its own (what --keep copies)."""
        return self is InputKind.CSV or self.is_table


class InputFormat(Word):
    """--input-format: `auto`, or the kind an input is read as."""

    AUTO = "auto"
    YAML = "yaml"
    JSON = "json"
    CSV = "csv"
    FHIR = "fhir"
    FHIR_NDJSON = "fhir-ndjson"
    HL7V2 = "hl7v2"
    PARQUET = "parquet"
    ARROW = "arrow"

    @property
    def kind(self) -> InputKind | None:
        """The kind this format forces; None for `auto`."""
        if self is InputFormat.AUTO:
            return None
        if self is InputFormat.JSON:
            return InputKind.JSON_PANEL
        return InputKind(self.value)


class Layout(Word):
    """A CSV or table export: one row per panel (wide), one per result (long), or found."""

    AUTO = "auto"
    WIDE = "wide"
    LONG = "long"


class OutputFormat(Word):
    """The format batch records are written in."""

    CSV = "csv"
    TEXT = "text"
    NDJSON = "ndjson"
    JSON = "json"
    FHIR_NDJSON = "fhir-ndjson"
    PARQUET = "parquet"

    @property
    def full_reports(self) -> bool:
        """Whether each record needs its full report (else its outcome is enough)."""
        return self not in (OutputFormat.CSV, OutputFormat.TEXT, OutputFormat.PARQUET)

    @property
    def json_records(self) -> bool:
        """Whether each record is its full report as JSON text (NDJSON, a JSON array)."""
        return self in (OutputFormat.NDJSON, OutputFormat.JSON)

    @property
    def by_columns(self) -> bool:
        """Whether its writer takes decided blocks of rows (the columnar path) as well as
        records."""
        return self in (
            OutputFormat.CSV,
            OutputFormat.PARQUET,
            OutputFormat.NDJSON,
            OutputFormat.JSON,
        )

    @property
    def binary(self) -> bool:
        """Written as bytes, only to a file named with -o (never to a terminal)."""
        return self is OutputFormat.PARQUET

    @property
    def takes_kept(self) -> bool:
        """Whether a record of this format has a place for --keep columns."""
        return self not in (OutputFormat.FHIR_NDJSON, OutputFormat.TEXT)


# -o's extension -> the format it names, for `b12lab batch`.
OUTPUT_EXTENSIONS = {
    ".csv": OutputFormat.CSV,
    ".ndjson": OutputFormat.NDJSON,
    ".jsonl": OutputFormat.NDJSON,
    ".json": OutputFormat.JSON,
    ".txt": OutputFormat.TEXT,
    ".parquet": OutputFormat.PARQUET,
}

# The extension a file of each format is given.
FORMAT_EXTENSIONS = {
    OutputFormat.CSV: ".csv",
    OutputFormat.TEXT: ".txt",
    OutputFormat.NDJSON: ".ndjson",
    OutputFormat.JSON: ".json",
    OutputFormat.FHIR_NDJSON: ".ndjson",
    OutputFormat.PARQUET: ".parquet",
}


def contradicted_by_name(path: str, written: OutputFormat) -> OutputFormat | None:
    """The format a file's extension names when it is not the one written into it
    (`results.parquet` written as csv: parquet), else None.

    An extension no format claims (`.out`, `.dat`) names nothing. `.txt` is any
    text, so it holds every format but a binary one; a JSON extension (`.json`,
    `.ndjson`, `.jsonl`) holds any of the JSON formats (an array, records one per
    line, FHIR bundles one per line).
    """
    from pathlib import PurePath

    named = OUTPUT_EXTENSIONS.get(PurePath(path).suffix.lower())
    if named is None or named is written:
        return None
    if named is OutputFormat.TEXT and not written.binary:
        return None
    if named in _JSON_FAMILY and written in _JSON_FAMILY:
        return None  # JSON lines are often named .json, and FHIR bundles .ndjson
    return named


_JSON_FAMILY = frozenset({OutputFormat.JSON, OutputFormat.NDJSON, OutputFormat.FHIR_NDJSON})


def renamed_for(path: str, written: OutputFormat) -> str:
    """`path` with the extension of the format written into it (results.csv)."""
    from pathlib import PurePath

    return str(PurePath(path).with_suffix(FORMAT_EXTENSIONS[written]))
