"""Batch output records: CSV rows (formula-safe), NDJSON lines, a JSON array."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import TextIO

from b12lab.batch.rows import BatchRecord
from b12lab.output_columns import (
    BASE_COLUMNS,
    CSV_COLUMNS_VERSION,
    ERROR_COLUMN,
    OutputColumns,
)
from b12lab.reading.panel import CellError

__all__ = [
    "CSV_COLUMNS",
    "CSV_COLUMNS_VERSION",
    "ERROR_COLUMNS",
    "WRITERS",
    "CsvRecords",
    "ErrorRows",
    "FhirNdjsonRecords",
    "JsonArrayRecords",
    "NdjsonRecords",
    "OutputColumns",
    "csv_row",
    "header_row",
    "record_dict",
    "record_json",
    "spreadsheet_safe",
]
NO_EXTRA = OutputColumns()

# The columns every run writes, in order; a run adds its normalized values and
# --keep columns before `error` (`OutputColumns.csv_header`, b12lab.output_columns).
CSV_COLUMNS = (*BASE_COLUMNS, ERROR_COLUMN)
ERROR_COLUMNS = ("line", "column", "value", "reason")
# Formula triggers, including the fullwidth and small forms some spreadsheets
# fold to ASCII, and the minus sign.
_FORMULA_START = frozenset("=+-@\t\r\n＝＋－＠﹦﹢﹣−")


def _invisible(char: str) -> bool:
    import unicodedata

    return char.isspace() or unicodedata.category(char) in ("Cf", "Zs", "Cc")


def spreadsheet_safe(value: str) -> str:
    """A cell a spreadsheet would run as a formula gets a leading apostrophe.

    The trigger counts also behind leading invisible characters (a BOM, a
    zero-width space or joiner, a no-break space, other format characters).
    """
    for char in value:
        if char in _FORMULA_START:
            return "'" + value
        if not _invisible(char):
            return value
    return value


def header_row(names) -> list[str]:
    """A CSV header row: names are cells too (a --keep column may be named '=cmd')."""
    return [spreadsheet_safe(str(name)) for name in names]


def outcome_cells(outcome, warnings, guideline: str, provenance) -> list[str]:
    """The CSV cells from b12_status to provenance: the outcome, then the warnings, the
    guideline and the provenance (not yet spreadsheet-safe)."""
    cells = [outcome.b12_status]
    for flag, findings in zip(outcome.flags, outcome.domain_findings, strict=True):
        cells += [flag or "", " ".join(findings)]
    return [
        *cells,
        " ".join(outcome.other_findings),
        outcome.highest_severity or "",
        " ".join(outcome.missing),
        "; ".join(warnings),
        guideline,
        " ".join(f"{key}={value}" for key, value in provenance),
    ]


def csv_row(record: BatchRecord, columns: OutputColumns = NO_EXTRA) -> list[str]:
    """The record's cells in `columns.csv_header` order, each spreadsheet-safe."""
    row = [
        str(record.first_line),
        record.patient_id or "",
        record.panel_date.isoformat() if record.panel_date else "",
        *outcome_cells(record.outcome, record.warnings, record.guideline, record.provenance),
        *record.value_cells(columns.values),
        *(record.kept or ("",) * len(columns.kept)),
        "; ".join(record.errors),
    ]
    return [spreadsheet_safe(cell) for cell in row]


class CsvRecords:
    def __init__(self, stream: TextIO, columns: OutputColumns = NO_EXTRA):
        self.writer = csv.writer(stream, lineterminator="\n")
        self.columns = columns
        self.writer.writerow(header_row(columns.csv_header))

    def write(self, record: BatchRecord) -> None:
        self.writer.writerow(csv_row(record, self.columns))

    def close(self) -> None:
        pass


def record_dict(record: BatchRecord, columns: OutputColumns = NO_EXTRA) -> dict:
    """The record's report as JSON, its `lines` and, with --keep, its `kept` cells."""
    if record.report is None and record.json_text is not None:
        return json.loads(record.json_text)  # rendered from its key's template
    assert record.report is not None, "JSON output needs full reports"
    document = record.report.to_dict()
    document["lines"] = list(record.lines)
    if columns.kept:
        cells = record.kept or ("",) * len(columns.kept)
        document["kept"] = {k.name: cell for k, cell in zip(columns.kept, cells, strict=True)}
    return document


def record_json(record: BatchRecord, columns: OutputColumns = NO_EXTRA) -> str:
    """`record_dict` as JSON text (rendered already when the record came from a template)."""
    if record.json_text is not None:
        return record.json_text
    return json.dumps(record_dict(record, columns), ensure_ascii=False)


def block_json(decided, columns: OutputColumns = NO_EXTRA):
    """The JSON text of each row of a decided block (`b12lab.columnar.Decided`), in
    order: its filled template, or the row path's record for a row in its `errors`."""
    errors = decided.errors
    for row, text in enumerate(decided.json):
        yield text if text is not None else record_json(errors[row], columns)


class NdjsonRecords:
    def __init__(self, stream: TextIO, columns: OutputColumns = NO_EXTRA):
        self.stream = stream
        self.columns = columns

    def write(self, record: BatchRecord) -> None:
        self.stream.write(record_json(record, self.columns) + "\n")

    def write_block(self, decided) -> None:
        """A decided block of rows (the columnar path, `b12lab.columnar.Decided`)."""
        self.write_texts(block_json(decided, self.columns))

    def write_texts(self, texts: Iterable[str]) -> None:
        """Records already rendered as JSON texts, in order."""
        self.stream.write("".join(text + "\n" for text in texts))

    def close(self) -> None:
        pass


class JsonArrayRecords:
    """One JSON array, written element by element so memory stays flat."""

    def __init__(self, stream: TextIO, columns: OutputColumns = NO_EXTRA):
        self.stream = stream
        self.columns = columns
        self.count = 0
        stream.write("[")

    def write(self, record: BatchRecord) -> None:
        self.stream.write(("," if self.count else "") + "\n")
        self.stream.write(record_json(record, self.columns))
        self.count += 1

    def write_block(self, decided) -> None:
        """A decided block of rows (the columnar path, `b12lab.columnar.Decided`)."""
        self.write_texts(block_json(decided, self.columns))

    def write_texts(self, texts: Iterable[str]) -> None:
        """Records already rendered as JSON texts, in order."""
        texts = list(texts)
        if texts:
            joined = ",\n".join(texts)
            self.stream.write(("," if self.count else "") + "\n" + joined)
            self.count += len(texts)

    def close(self) -> None:
        self.stream.write("\n]\n")


class ErrorRows:
    """The --errors file: one row per rejected cell (line, column, value, reason)."""

    def __init__(self, stream: TextIO):
        self.writer = csv.writer(stream, lineterminator="\n")
        self.writer.writerow(header_row(ERROR_COLUMNS))

    def write(self, record: BatchRecord) -> None:
        self.write_cells(record.cell_errors)

    def write_cells(self, cell_errors: Iterable[CellError]) -> None:
        """One row per rejected cell."""
        for error in cell_errors:
            self.writer.writerow(
                [
                    spreadsheet_safe(str(error.line)),
                    spreadsheet_safe(error.column),
                    spreadsheet_safe(error.value),
                    spreadsheet_safe(error.reason),
                ]
            )

    def close(self) -> None:
        pass


class FhirNdjsonRecords:
    """One FHIR R4 Bundle per panel per line (the bulk-data NDJSON convention)."""

    def __init__(self, stream: TextIO, columns: OutputColumns = NO_EXTRA):
        from b12lab.ranges import load_ranges

        self.stream = stream
        self.ranges = load_ranges()

    def write(self, record: BatchRecord) -> None:
        from b12lab.render.fhir import report_bundle

        assert record.report is not None, "FHIR output needs full reports"
        bundle = report_bundle(record.report, self.ranges)
        self.stream.write(json.dumps(bundle, ensure_ascii=False, separators=(",", ":")) + "\n")

    def close(self) -> None:
        pass


class TextRecords:
    """A table to read on a terminal: one line per panel (line, patient, date, B12
    status, highest severity), its findings wrapped beneath it with a hanging indent
    to the terminal's width."""

    HEADINGS = ("line", "patient", "date", "B12", "severity")
    WIDTHS = (5, 12, 10, 10, 8)
    INDENT = 7  # findings start under the patient column

    def __init__(self, stream: TextIO, columns: OutputColumns = NO_EXTRA):
        import shutil

        self.stream = stream
        self.width = max(40, shutil.get_terminal_size((80, 24)).columns)
        self.stream.write(self._cells(self.HEADINGS) + "\n")

    def _cells(self, cells) -> str:
        from b12lab.render.safe import escape_controls

        line = ""
        for cell, width in zip(cells, self.WIDTHS, strict=True):
            text = escape_controls(cell)
            text = text if len(text) <= width else text[: width - 1] + "~"
            line += text.ljust(width + 2)
        return line.rstrip()

    def write(self, record: BatchRecord) -> None:
        import textwrap

        from b12lab.render.safe import escape_controls

        outcome = record.outcome
        findings = [f for group in outcome.domain_findings for f in group]
        findings += list(outcome.other_findings)
        cells = (
            str(record.first_line),
            record.patient_id or "",
            record.panel_date.isoformat() if record.panel_date else "",
            outcome.b12_status,
            outcome.highest_severity or "",
        )
        lines = [self._cells(cells)]
        indent = " " * self.INDENT
        for text in [", ".join(findings)] + [f"error: {e}" for e in record.errors]:
            if text:
                lines += textwrap.wrap(
                    escape_controls(text),
                    width=self.width,
                    initial_indent=indent,
                    subsequent_indent=indent,
                    break_long_words=False,
                    break_on_hyphens=False,
                )
        self.stream.write("\n".join(line.rstrip() for line in lines) + "\n")

    def close(self) -> None:
        pass


WRITERS = {
    "csv": CsvRecords,
    "text": TextRecords,
    "ndjson": NdjsonRecords,
    "json": JsonArrayRecords,
    "fhir-ndjson": FhirNdjsonRecords,
}
