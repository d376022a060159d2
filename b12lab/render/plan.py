"""`b12lab batch --plan` as text (for a person) or JSON (`plan_version` 1: b12lab.batch.plan)."""

from __future__ import annotations

import json
import textwrap

from b12lab.batch.plan import (
    ASSUMED,
    REFUSED,
    SINGLE_SCALE,
    UNIT_FIELD,
    UNIT_SOURCES,
    ColumnReading,
    ExportPlan,
    TestReading,
)
from b12lab.output_columns import CSV_COLUMNS_VERSION
from b12lab.reading.columns import HEADER_UNIT, UNIT_COLUMN, UNIT_OPTION
from b12lab.render.safe import escape_controls

FORMATS = ("text", "json")
WIDTH = 100  # notes wrap here

ROLE_TEXT = {
    "analyte_unit": "unit of {analyte}",
    "patient_id": "patient id",
    "date": "collection date",
    "sex": "sex",
    "age": "age",
    "b12_therapy_start": "B12 therapy start",
    "accession": "accession",
    "test": "test name or code",
    "value": "result value",
    "unit": "result unit",
    "ignored": "ignored",
    "unused": "not used",
}
SOURCE_TEXT = {
    "value": "from the value cells",
    UNIT_COLUMN: "from the unit column",
    UNIT_FIELD: "from the result's unit field",
    HEADER_UNIT: "from the header",
    UNIT_OPTION: "from --unit",
    SINGLE_SCALE: "(none needed: every unit it accepts has this scale)",
    ASSUMED: "none: canonical unit assumed with a warning",
    REFUSED: "none: refused under --strict",
}
assert set(SOURCE_TEXT) == set(UNIT_SOURCES)
KIND_TEXT = {
    "csv": "CSV",
    "fhir-json": "FHIR JSON",
    "fhir-ndjson": "FHIR bulk NDJSON",
    "hl7v2": "HL7 v2",
    "parquet": "Parquet",
    "arrow": "Arrow IPC",
}
LAYOUT_TEXT = {
    "wide": "wide layout (one row per panel, one column per analyte)",
    "long": "long layout (one row per result: test, value, unit)",
    "message": "results grouped into panels like a long export",
}
DELIMITER_TEXT = {",": "','", ";": "';'", "\t": "tab"}


def render_plan(plan: ExportPlan, output_format: str = "text") -> str:
    if output_format == "json":
        return json.dumps(plan.to_dict(), indent=2, ensure_ascii=False) + "\n"
    return plan_text(plan)


def plan_text(plan: ExportPlan) -> str:
    lines = [f"b12lab batch plan for {_safe(plan.source)} (nothing interpreted)"]
    parts = [KIND_TEXT.get(plan.kind, plan.kind)]
    if plan.delimiter is not None:
        parts.append(f"delimiter {DELIMITER_TEXT.get(plan.delimiter, repr(plan.delimiter))}")
    if plan.encoding:
        parts.append(plan.encoding)
    lines.append(f"input: {', '.join(parts)}; {LAYOUT_TEXT[plan.layout]}")
    unit = "results" if plan.layout == "message" else "data rows"
    lines.append(f"sample: the first {plan.sample_rows:,} {unit} (at most 2,000)")
    if plan.strict:
        lines.append("--strict: every assumption is refused (the row is marked bad)")
    if plan.columns:
        lines.append("")
        lines.append("columns:")
        width = min(24, max(len(_safe(c.header)) for c in plan.columns))
        for column in plan.columns:
            lines.extend(_column_lines(column, width))
    if plan.layout != "wide":
        lines.append("")
        lines.append(
            "tests seen in the sample:" if plan.tests else "tests seen in the sample: none"
        )
        width = min(28, max((len(_safe(t.test)) for t in plan.tests), default=0))
        for test in plan.tests:
            lines.extend(_test_lines(test, width))
        if plan.skipped_tests:
            skipped = ", ".join(f"{_safe(t)} ({n:,})" for t, n in plan.skipped_tests.items())
            lines.append(f"skipped (not b12lab analytes): {skipped}")
    lines.append("")
    if plan.layout != "message":
        ignored = ", ".join(_safe(name) for name in plan.ignored) or "none"
        lines.append(f"columns ignored: {ignored}")
    lines.extend(_output_lines(plan))
    if plan.notes:
        lines.append("notes:")
        for note in plan.notes:
            lines.extend(_wrapped(note, "  - ", "    "))
    text = "\n".join(line.rstrip() for line in lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip("\n") + "\n"


def _output_lines(plan: ExportPlan) -> list[str]:
    """The kept columns and the CSV columns the run will write, with their version."""
    output = plan.output
    lines = []
    if output.kept:
        kept = "; ".join(
            f"{_safe(k.header)} (column {k.index + 1})"
            + (f" as {_safe(k.name)}" if k.name != k.header else "")
            for k in output.kept
        )
        lines.extend(_wrapped(f"kept (--keep, copied into every record): {kept}", "", "  "))
    header = output.csv_header
    lines.extend(
        _wrapped(
            f"CSV output, columns version {CSV_COLUMNS_VERSION} ({len(header)} columns): "
            + ", ".join(_safe(name) for name in header),
            "",
            "  ",
        )
    )
    return lines


def _column_lines(column: ColumnReading, width: int) -> list[str]:
    if column.role == "analyte":
        read_as = f"analyte {column.analyte}"
    else:
        read_as = ROLE_TEXT.get(column.role, column.role).format(analyte=column.analyte)
    empty = f"empty {column.empty_share:.0%}" if column.empty_share is not None else ""
    first = f"{column.index:>4}  {_safe(column.header):<{width}}  {read_as:<22} {empty}"
    lines = [first]
    indent = " " * (8 + width)
    if column.role == "analyte" and column.unit_source:
        text = _unit_text(column.unit, column.unit_source, column.units_seen, column.unit_column)
        lines.append(indent + text)
    elif column.units_seen:
        lines.append(indent + "seen: " + _seen(column.units_seen))
    for note in column.notes:
        lines.extend(_wrapped(note, indent + "! ", indent + "  "))
    return lines


def _test_lines(test: TestReading, width: int) -> list[str]:
    empty = f", empty {test.empty_share:.0%}" if test.empty_share else ""
    rows = f"{test.rows:,} {'row' if test.rows == 1 else 'rows'}{empty}"
    lines = [f"  {_safe(test.test):<{width}}  -> {test.analyte:<14} {rows}"]
    indent = " " * 8
    if test.unit_source:
        lines.append(indent + _unit_text(test.unit, test.unit_source, test.units_seen))
    for note in test.notes:
        lines.extend(_wrapped(note, indent + "! ", indent + "  "))
    return lines


def _unit_text(
    unit: str | None, source: str, seen: dict[str, int], unit_column: str | None = None
) -> str:
    described = SOURCE_TEXT.get(source, source)
    if source == UNIT_COLUMN and unit_column:
        described += f" '{_safe(unit_column)}'"
    if source in (ASSUMED, REFUSED):
        text = f"unit {described}" + (f" ({unit})" if unit else "")
    else:
        text = f"unit {_safe(unit or '?')} {described}"
    if seen and (len(seen) > 1 or source != SINGLE_SCALE):
        text += "; seen: " + _seen(seen)
    return text


def _seen(seen: dict[str, int]) -> str:
    return ", ".join(f"{_safe(unit)} {count:,}" for unit, count in seen.items())


def _wrapped(text: str, first: str, rest: str) -> list[str]:
    """A note on lines of at most WIDTH columns (a long word is never broken)."""
    return textwrap.wrap(
        _safe(text),
        WIDTH,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [first.rstrip()]


def _safe(text: str) -> str:
    return escape_controls(str(text))
