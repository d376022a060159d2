"""`b12lab batch EXPORT --plan`: how every column of an export will be read, before a long run.

The plan reads the header and a sample (the first `SAMPLE_ROWS` data rows: the
rows the run itself looks at to find the file's decimal mark) through the same
reading layer as the run: the columns are matched by `plan_columns` and
`apply_units`, a value's unit source is chosen by `unit_choice`, the decimal
mark is found by `sample_decimal_mark` as the run finds it, dates go through
`parse_date`, and every sampled value is read by `measure`, so that what the plan says would be
refused is what the run refuses. Nothing is interpreted: no panel is built, no
rule runs, and nothing is written but the plan.

    plan = plan_export("export.csv", load_ranges())
    plan.to_dict()      # the JSON shape below, `plan_version` 1

JSON shape (additive changes keep `plan_version`):

    {"plan_version": 1, "source": "export.csv",
     "input": {"kind": "csv", "delimiter": ",", "encoding": "UTF-8"},
     "layout": "wide" | "long" | "message",
     "sample": {"rows": 5, "limit": 2000},
     "decimal_mark": "." | "," | null, "decimal_source": "sample" | "--decimal" | null,
     "strict": false,
     "columns": [{"index": 5, "header": "b12", "role": "analyte", "analyte": "b12",
                  "unit": "pg/mL", "unit_source": "unit_column", "unit_column": "b12_unit",
                  "unit_sources": {"unit_column": 4}, "units_seen": {"pg/mL": 3, "pmol/L": 1},
                  "empty_share": 0.0, "notes": []}],
     "ignored": ["comment"],
     "tests": [{"test": "Vitamin B12", "analyte": "b12", "rows": 2, "unit": ..., ...}],
     "skipped_tests": {"Sodium": 3},
     "notes": ["decimal mark: '.' ..."],
     "output": {"csv_columns_version": 2,
                "csv_columns": ["line", ..., "b12_pmol_l", ..., "MRN", "error"],
                "values": {"b12": "b12_pmol_l"},
                "kept": [{"index": 1, "header": "MRN", "column": "MRN"}]}}

`index` is the 1-based position in the header. `output` lists the CSV columns
the run will write (b12lab.output_columns): the normalized-value column of each
analyte and the --keep columns with the names they are written under. `role` is one of ROLES;
`unit_source` one of UNIT_SOURCES (the source most of the sampled values take
their unit from; `unit_sources` counts them all).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

from b12lab.batch.options import BatchOptions
from b12lab.batch.rows import AUTO, DECIMAL_SAMPLE
from b12lab.derived import ANC
from b12lab.errors import AmbiguousValueError, InputError, UnitError
from b12lab.output_columns import CSV_COLUMNS_VERSION, OutputColumns, output_columns
from b12lab.ranges import Ranges
from b12lab.reading.columns import (
    FIELDS,
    HEADER_UNIT,
    UNIT_COLUMN,
    UNIT_OPTION,
    ColumnPlan,
    apply_units,
    plan_columns,
    sample_decimal_mark,
    test_analyte,
    unit_choice,
    unit_column_of,
    unit_hint,
)
from b12lab.reading.fields import parse_age, parse_date, parse_sex, sex_not_stated
from b12lab.reading.observation import is_loinc
from b12lab.reading.policy import COMMA, POINT, UNKNOWN, ReadPolicy
from b12lab.reading.values import cell_text, is_missing, measure, read_result

PLAN_VERSION = 1
SAMPLE_ROWS = DECIMAL_SAMPLE

# unit_source: where the sampled values of an analyte take their unit from.
VALUE_UNIT = "value"  # the value carries it: `180 pg/mL`
UNIT_FIELD = "unit_field"  # a message's own unit field (FHIR valueQuantity, HL7 OBX-6)
SINGLE_SCALE = "single_scale"  # every unit the analyte accepts has one scale: none needed
ASSUMED = "assumed"  # none anywhere: the canonical unit is assumed, with a warning
REFUSED = "refused"  # none anywhere, and --strict refuses the assumption
UNIT_SOURCES = (  # in this order when as many values take each
    UNIT_COLUMN,
    UNIT_FIELD,
    HEADER_UNIT,
    UNIT_OPTION,
    VALUE_UNIT,
    SINGLE_SCALE,
    ASSUMED,
    REFUSED,
)
SOURCE_NAMES = {
    UNIT_COLUMN: "the unit column",
    UNIT_FIELD: "the result's unit field",
    HEADER_UNIT: "the header",
    UNIT_OPTION: "--unit",
    VALUE_UNIT: "the value itself",
    SINGLE_SCALE: "none needed",
    ASSUMED: "none (assumed)",
    REFUSED: "none (refused)",
}

# role: what a column is read as.
ANALYTE = "analyte"
ANALYTE_UNIT = "analyte_unit"  # a wide export's `<analyte>_unit` column
IGNORED = "ignored"
UNUSED = "unused"  # a second column for a field already read from another
ROLES = (ANALYTE, ANALYTE_UNIT, *FIELDS, IGNORED, UNUSED)

_FIELD_PARSERS = {
    "date": parse_date,
    "b12_therapy_start": parse_date,
    "sex": parse_sex,
    "age": parse_age,
}
_WIDE_FIELDS = ("patient_id", "date", "sex", "age", "b12_therapy_start")  # what a wide row reads
_MESSAGE_KINDS = {
    "fhir-json": "FHIR JSON (a Bundle or a resource)",
    "fhir-ndjson": "FHIR bulk NDJSON",
    "hl7v2": "HL7 v2 messages",
}


@dataclass
class Tally:
    """What the sample says about the values of one analyte column, test or code."""

    analyte: str | None
    rows: int = 0  # sampled rows (or results) that could hold a value
    empty: int = 0  # of which empty or a "no result" token
    sources: Counter = field(default_factory=Counter)  # unit_source -> values
    units: Counter = field(default_factory=Counter)  # unit as written -> values
    refused: int = 0  # values `measure` refuses (the run marks their rows bad)
    first_refusal: str | None = None
    ambiguous: str | None = None  # a value without a unit that two units read apart


@dataclass
class ColumnReading:
    """How one header column will be read."""

    index: int  # 1-based
    header: str
    role: str
    analyte: str | None = None
    unit: str | None = None
    unit_source: str | None = None
    unit_column: str | None = None  # an analyte's `<analyte>_unit` column
    unit_sources: dict[str, int] = field(default_factory=dict)
    units_seen: dict[str, int] = field(default_factory=dict)
    empty_share: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TestReading:
    """A test name or code seen in a long export's (or a message file's) sample."""

    test: str
    analyte: str
    rows: int
    unit: str | None = None
    unit_source: str | None = None
    unit_sources: dict[str, int] = field(default_factory=dict)
    units_seen: dict[str, int] = field(default_factory=dict)
    empty_share: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ExportPlan:
    """How an export will be read: its kind, every column, the tests, and what is assumed."""

    source: str
    kind: str  # "csv", "fhir-json", "fhir-ndjson", "hl7v2"
    layout: str  # "wide", "long" or "message"
    delimiter: str | None = None
    encoding: str | None = None
    sample_rows: int = 0
    decimal_mark: str | None = None
    decimal_source: str | None = None  # "sample", "--decimal", or None (not clear)
    strict: bool = False
    columns: list[ColumnReading] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    tests: list[TestReading] = field(default_factory=list)
    skipped_tests: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    output: OutputColumns = field(default_factory=OutputColumns)  # the CSV columns of the run

    def to_dict(self) -> dict:
        return {
            "plan_version": PLAN_VERSION,
            "source": self.source,
            "input": {
                "kind": self.kind,
                "delimiter": self.delimiter,
                "encoding": self.encoding,
            },
            "layout": self.layout,
            "sample": {"rows": self.sample_rows, "limit": SAMPLE_ROWS},
            "decimal_mark": self.decimal_mark,
            "decimal_source": self.decimal_source,
            "strict": self.strict,
            "columns": [column.to_dict() for column in self.columns],
            "ignored": list(self.ignored),
            "tests": [test.to_dict() for test in self.tests],
            "skipped_tests": dict(self.skipped_tests),
            "notes": list(self.notes),
            "output": {
                "csv_columns_version": CSV_COLUMNS_VERSION,
                "csv_columns": list(self.output.csv_header),
                "values": dict(zip(self.output.values, self.output.value_names, strict=True)),
                "kept": [
                    {"index": k.index + 1, "header": k.header, "column": k.name}
                    for k in self.output.kept
                ],
            },
        }


# --- entry point ---------------------------------------------------------------------


def plan_export(
    source: str, ranges: Ranges, options: BatchOptions | None = None, **given
) -> ExportPlan:
    """The plan for `source` (a path, or `-` for stdin); InputError where the run would refuse.

    `options` are the run's (a BatchOptions, or its keyword options: layout, mapping
    as `parse_map` gives it, policy, input_format, keep).
    """
    from b12lab.batch.run import batch_input, check_keep
    from b12lab.inputs.export import open_export

    options = BatchOptions.of(options, **given)
    layout, mapping, policy, keep = options.layout, options.mapping, options.policy, options.keep
    stream, label, _ = open_export(source)
    try:
        head, kind = batch_input(stream, label, options.input_format)
        if keep:
            check_keep(kind)
        if kind == "csv":
            return _plan_csv(stream, label, head, ranges, layout, mapping, policy, keep)
        if kind.is_table:
            return _plan_table(stream, source, label, kind, ranges, options)
        plan = _plan_messages(stream, label, kind, ranges, mapping, policy)
        plan.output = output_columns(ranges, None)
        return plan
    finally:
        if source != "-":
            stream.close()


# --- CSV exports ---------------------------------------------------------------------


def _plan_csv(
    stream,
    label: str,
    head: bytes,
    ranges: Ranges,
    layout: str,
    mapping: Mapping[str, str] | None,
    policy: ReadPolicy,
    keep: Sequence[str] = (),
) -> ExportPlan:
    from b12lab.inputs.export import ReadStats, looks_binary, read_header, records, text_lines

    stats = ReadStats()
    counted = _Counted(text_lines(stream, stats, label))
    header, rest = read_header(iter(counted), label)
    if looks_binary(header.text):
        raise InputError(
            f"export {label} is not a CSV text file (binary data?)",
            fix="give a CSV export; spreadsheets need 'Save as CSV' first",
        )
    columns = plan_columns(header.cells, ranges, layout=layout, mapping=mapping)
    apply_units(columns, policy.units, ranges)
    present = [c.analyte for c in columns.analytes] if columns.layout == "wide" else None
    output = output_columns(ranges, present, columns.header, keep)
    sample = list(itertools.islice(records(rest, header.delimiter, header.lines), SAMPLE_ROWS))
    plan = ExportPlan(
        source=label,
        kind="csv",
        layout=columns.layout,
        delimiter=header.delimiter,
        sample_rows=len(sample),
        strict=policy.strict,
        ignored=list(columns.ignored),
        notes=list(columns.notes),
        output=output,
    )
    rows = [(r.line, r.cells) for r in sample if r.cells is not None]
    policy = _decimal(plan, columns, rows, policy)
    plan.encoding = _encoding(head, stats, counted.lines)
    _planned_rows(plan, columns, rows, ranges, policy)
    _sample_notes(plan, columns, sample)
    return plan


def _planned_rows(
    plan: ExportPlan, columns: ColumnPlan, rows: list, ranges: Ranges, policy: ReadPolicy
) -> None:
    if columns.layout == "long":
        _long_columns(plan, columns, rows, ranges, policy)
    else:
        _wide_columns(plan, columns, rows, ranges, policy)


# --- Parquet and Arrow IPC -----------------------------------------------------------


def _value_columns(columns: ColumnPlan) -> set[int]:
    """The header positions that hold results: each analyte's column (wide) or the value
    column (long)."""
    if columns.layout == "long":
        return {columns.fields["value"]} if "value" in columns.fields else set()
    return {column.index for column in columns.analytes}


def _plan_table(
    stream, source: str, label: str, kind, ranges: Ranges, options: BatchOptions
) -> ExportPlan:
    """A Parquet or Arrow input planned as its run reads it: the columns by name, and the
    first rows' cells as the run turns them into cells (a stored number as an exact
    number, a stored date as a date); only cells stored as text show a decimal mark."""
    from contextlib import ExitStack

    import pyarrow as pa

    from b12lab.inputs.arrow import cell_table, open_arrow, row_cells

    layout, mapping, policy, keep = options.layout, options.mapping, options.policy, options.keep
    rows: list = []
    texts: list[bool] = []
    with ExitStack() as stack:
        found = open_arrow(stream, source, label, str(kind), stack)
        names = list(found.schema.names)
        for batch in found.batches():
            table = pa.Table.from_batches([batch]).slice(0, SAMPLE_ROWS - len(rows))
            cells, texts = cell_table(table)
            rows.extend(enumerate(row_cells(cells), start=len(rows) + 1))
            if len(rows) >= SAMPLE_ROWS:
                break
    columns = plan_columns(names, ranges, layout=layout, mapping=mapping)
    apply_units(columns, policy.units, ranges)
    present = [c.analyte for c in columns.analytes] if columns.layout == "wide" else None
    plan = ExportPlan(
        source=label,
        kind=str(kind),
        layout=columns.layout,
        sample_rows=len(rows),
        strict=policy.strict,
        ignored=list(columns.ignored),
        notes=list(columns.notes),
        output=output_columns(ranges, present, columns.header, keep),
    )
    shown = [
        (line, [cell if text else None for cell, text in zip(cells, texts, strict=True)])
        for line, cells in rows
    ]
    policy = _decimal(plan, columns, shown, policy)
    if plan.decimal_source is None and not any(
        text for index, text in enumerate(texts) if index in _value_columns(columns)
    ):
        plan.notes = [n for n in plan.notes if not n.startswith("decimal mark:")]
        plan.notes.append("decimal mark: none needed (the values are stored as numbers)")
    _planned_rows(plan, columns, rows, ranges, policy)
    if not rows:
        plan.notes.append("the input has columns but no rows")
    if "patient_id" not in columns.fields:
        plan.notes.append("no patient column: records carry no patient id")
    if "date" not in columns.fields:
        plan.notes.append("no collection date column: panels are evaluated as of today (--as-of)")
    return plan


class _Counted:
    """Lines as read, counted (to tell a Windows-1252 file from a stray byte)."""

    def __init__(self, lines: Iterable[str]):
        self._lines = lines
        self.lines = 0

    def __iter__(self):
        for line in self._lines:
            self.lines += 1
            yield line


def _encoding(head: bytes, stats, lines: int) -> str:
    if stats.utf16:
        return "UTF-16"
    if stats.cp1252_lines and stats.cp1252_lines >= lines:
        return "Windows-1252"
    name = "UTF-8 with BOM" if head.startswith(b"\xef\xbb\xbf") else "UTF-8"
    if stats.cp1252_lines:
        name += f" ({stats.cp1252_lines:,} of the lines read as Windows-1252)"
    return name


def _decimal(plan: ExportPlan, columns: ColumnPlan, rows: list, policy: ReadPolicy) -> ReadPolicy:
    """The decimal mark, as the run decides it: --decimal, else the only mark the values use."""
    if policy.decimal != AUTO:
        plan.decimal_mark = policy.decimal if policy.decimal in (POINT, COMMA) else None
        plan.decimal_source = "--decimal"
        if plan.decimal_mark:
            plan.notes.append(f"decimal mark: '{plan.decimal_mark}' (--decimal)")
        return policy
    found = sample_decimal_mark(columns, rows)
    if found.mark is not UNKNOWN:
        plan.decimal_mark, plan.decimal_source = found.mark, "sample"
    if found.note:
        plan.notes.append(found.note)
    elif rows:
        plan.notes.append(
            "decimal mark: not shown by any value in the sample; a value such as 1.476 is "
            "refused unless --decimal is given"
        )
    return replace(policy, decimal=found.mark)


def _wide_columns(
    plan: ExportPlan, columns: ColumnPlan, rows: list, ranges: Ranges, policy: ReadPolicy
) -> None:
    analytes = {column.index: column for column in columns.analytes}
    fields = {index: key for key, index in columns.fields.items()}
    units_of = {c.unit_index: c for c in columns.analytes if c.unit_index is not None}
    for index, raw_name in enumerate(columns.header):
        name = raw_name.strip()
        cells = [_cell(cells, index) for _, cells in rows]
        if index in analytes:
            column = analytes[index]
            tally = Tally(column.analyte)
            unit_cells = column.unit_index
            for line, row in rows:
                unit_text = _cell(row, unit_cells) if unit_cells is not None else None
                _tally_value(
                    tally,
                    _cell(row, index),
                    (column.name, unit_text, column.header_unit, column.given_unit),
                    line,
                    ranges,
                    policy,
                )
            static = unit_choice(
                "(unit column)" if unit_cells is not None else None,
                column.header_unit,
                column.given_unit,
            )
            reading = ColumnReading(index + 1, name, ANALYTE, column.analyte)
            _summarize(reading, tally, static, ranges, policy)
            if unit_cells is not None:
                reading.unit_column = columns.header[unit_cells].strip()
        elif index in fields:
            reading = ColumnReading(index + 1, name, fields[index])
            reading.empty_share = _share(sum(is_missing(c) for c in cells), len(cells))
            if fields[index] not in _WIDE_FIELDS:
                reading.notes.append(f"not read in the wide layout ({fields[index]})")
            else:
                _field_notes(reading, fields[index], rows, index, policy)
        elif index in units_of:
            owner = units_of[index]
            reading = ColumnReading(index + 1, name, ANALYTE_UNIT, owner.analyte)
            reading.notes.append(f"the unit of column '{owner.name}'")
            reading.units_seen = _counted(c.strip() for c in cells if isinstance(c, str))
            reading.empty_share = _share(sum(is_missing(c) for c in cells), len(cells))
        else:
            reading = _other_column(index, name, columns, ranges)
        plan.columns.append(reading)
    present = {column.analyte for column in columns.analytes}
    _anc_note(plan, present, policy)


def _other_column(index: int, name: str, columns: ColumnPlan, ranges: Ranges) -> ColumnReading:
    """A column no analyte or field reads: ignored, or a unit or field column already taken."""
    unit_of = unit_column_of(name, ranges)
    if unit_of is not None:
        reading = ColumnReading(index + 1, name, ANALYTE_UNIT, unit_of)
        owner = [c for c in columns.analytes if c.analyte == unit_of]
        if owner:
            reading.notes.append(
                f"not used: '{columns.header[owner[0].unit_index].strip()}' is the unit column "
                f"of '{owner[0].name}'"
                if owner[0].unit_index is not None
                else "not used"
            )
        else:
            reading.notes.append(f"not used: no {unit_of} column")
        return reading
    if (name or f"(column {index + 1})") in columns.ignored:
        reading = ColumnReading(index + 1, name, IGNORED)
        close = ranges.close_analyte(name) if name else None
        if close is not None:
            reading.notes.append(f"did you mean {close}? (--map '{name[:40]}={close}')")
        return reading
    reading = ColumnReading(index + 1, name, UNUSED)
    reading.notes.append("not used: another column already gives this field")
    return reading


def _long_columns(
    plan: ExportPlan, columns: ColumnPlan, rows: list, ranges: Ranges, policy: ReadPolicy
) -> None:
    fields = {index: key for key, index in columns.fields.items()}
    for index, raw_name in enumerate(columns.header):
        name = raw_name.strip()
        cells = [_cell(cells, index) for _, cells in rows]
        if index in fields:
            key = fields[index]
            reading = ColumnReading(index + 1, name, key)
            reading.empty_share = _share(sum(is_missing(c) for c in cells), len(cells))
            if key == "unit":
                reading.units_seen = _counted(c.strip() for c in cells if isinstance(c, str))
            elif key in _FIELD_PARSERS:
                _field_notes(reading, key, rows, index, policy)
        elif any(column.index == index for column in columns.analytes):
            analyte = next(c.analyte for c in columns.analytes if c.index == index)
            reading = ColumnReading(index + 1, name, ANALYTE, analyte)
            reading.notes.append("not read in the long layout")
        else:
            reading = _other_column(index, name, columns, ranges)
        plan.columns.append(reading)
    test_index = columns.fields["test"]
    value_index = columns.fields["value"]
    unit_index = columns.fields.get("unit")
    tallies: dict[str, Tally] = {}
    skipped: Counter = Counter()
    nameless = 0
    for line, row in rows:
        test = str(_cell(row, test_index)).strip()
        analyte = test_analyte(columns, test, ranges)
        if analyte is None:
            if test:
                skipped[test[:40]] += 1
            else:
                nameless += 1
            continue
        tally = tallies.setdefault(test, Tally(analyte))
        unit_text = _cell(row, unit_index) if unit_index is not None else None
        hint_args = (test[:40], unit_text, None, columns.analyte_units.get(analyte))
        _tally_value(tally, _cell(row, value_index), hint_args, line, ranges, policy)
    _tests(plan, tallies, columns, ranges, policy, unit_field=False)
    plan.skipped_tests = dict(skipped.most_common())
    _unread_notes(plan, {test: None for test in skipped}, ranges)
    if nameless:
        plan.notes.append(
            f"{_n(nameless, 'row')} of the sample without a test name (each an error)"
        )
    _anc_note(plan, {t.analyte for t in plan.tests}, policy)


def _tests(
    plan: ExportPlan,
    tallies: Mapping[str, Tally],
    columns: ColumnPlan,
    ranges: Ranges,
    policy: ReadPolicy,
    *,
    unit_field: bool,
) -> None:
    for test, tally in tallies.items():
        analyte = tally.analyte or ""
        given = columns.analyte_units.get(analyte)
        static = unit_choice(None, None, given)
        reading = TestReading(test, analyte, tally.rows)
        _summarize(reading, tally, static, ranges, policy)
        if unit_field:
            reading.unit_sources = {
                (UNIT_FIELD if k == UNIT_COLUMN else k): n for k, n in reading.unit_sources.items()
            }
            if reading.unit_source == UNIT_COLUMN:
                reading.unit_source = UNIT_FIELD
        plan.tests.append(reading)


# --- laboratory messages ------------------------------------------------------------


def _plan_messages(
    stream,
    label: str,
    kind: str,
    ranges: Ranges,
    mapping: Mapping[str, str] | None,
    policy: ReadPolicy,
) -> ExportPlan:
    """FHIR or HL7 v2: the codes seen in the first observations and the analyte each means."""
    from b12lab.messages import OBSERVATION_HEADER, read_observations
    from b12lab.reading.observation import SourceProblem

    columns = plan_columns(list(OBSERVATION_HEADER), ranges, layout="long", mapping=mapping)
    apply_units(columns, policy.units, ranges)
    given_decimal = policy.decimal != AUTO
    if not given_decimal:  # FHIR numbers are JSON numbers; HL7 NM values use a point
        policy = replace(policy, decimal=POINT)
    source = read_observations(stream, kind, label)
    kind = getattr(source, "kind", None) or kind  # FHIR: a document or NDJSON, as read
    sample = list(itertools.islice(source, SAMPLE_ROWS))
    plan = ExportPlan(
        source=label,
        kind=kind,
        layout="message",
        sample_rows=len(sample),
        strict=policy.strict,
        decimal_mark=policy.decimal if policy.decimal in (POINT, COMMA) else None,
        decimal_source="--decimal" if given_decimal else "format",
    )
    plan.notes.append(
        f"{_MESSAGE_KINDS.get(kind, kind)}: each result is matched by its code (LOINC or "
        "local, --map CODE=ANALYTE) and grouped into panels by patient, collection date and "
        "report"
    )
    tallies: dict[str, Tally] = {}
    skipped: Counter = Counter()
    displays: dict[str, str | None] = {}
    problems: list[str] = []
    for record in sample:
        if isinstance(record, SourceProblem):
            problems.append(f"{record.where}: {record.reason}")
            continue
        code = record.code.strip()
        analyte = test_analyte(columns, code, ranges)
        if analyte is None and record.display and not is_loinc(record.code_system):
            analyte = test_analyte(columns, record.display.strip(), ranges)  # as the run does
        if analyte is None:
            skipped[code[:40] or "(no code)"] += 1
            displays.setdefault(code[:40], record.display)
            continue
        tally = tallies.setdefault(code[:40], Tally(analyte))
        if record.absent_reason or record.value is None:
            tally.rows += 1
            tally.empty += 1
            continue
        raw = record.value
        if record.comparator:
            raw = f"{record.comparator}{raw}"
        hint_args = (code[:40], record.unit, None, columns.analyte_units.get(analyte))
        _tally_value(tally, raw, hint_args, record.line, ranges, policy)
    _tests(plan, tallies, columns, ranges, policy, unit_field=True)
    plan.skipped_tests = dict(skipped.most_common())
    _unread_notes(plan, displays, ranges)
    if problems:
        plan.notes.append(
            f"{_n(len(problems), 'record')} of the sample cannot be read (each its own record in "
            f"the output), e.g. {problems[0]}"
        )
    other = getattr(source, "skipped", None)
    if other:
        plan.notes.append(
            "not read in the sample: " + ", ".join(f"{k} {n:,}" for k, n in sorted(other.items()))
        )
    if not tallies:
        plan.notes.append("no result of a test b12lab reads in the sample")
    _anc_note(plan, {t.analyte for t in plan.tests}, policy)
    return plan


# --- values ----------------------------------------------------------------------


def _tally_value(
    tally: Tally, raw: object, hint_args: tuple, line: int, ranges: Ranges, policy: ReadPolicy
) -> None:
    """One sampled value: where its unit comes from, and whether the run would refuse it."""
    tally.rows += 1
    if is_missing(raw):
        tally.empty += 1
        return
    analyte = tally.analyte
    assert analyte is not None
    _, unit_text, header_unit, given = hint_args
    own = _own_unit(raw, analyte)
    choice = unit_choice(unit_text, header_unit, given)
    if own:
        source, unit = VALUE_UNIT, own
    elif choice:
        source, unit = choice
    else:
        source, unit = _no_unit(analyte, ranges, policy), None
    tally.sources[source] += 1
    if unit:
        tally.units[unit] += 1
    try:
        measure(ranges, analyte, raw, hint=unit_hint(*hint_args), policy=policy)
    except AmbiguousValueError as error:
        if tally.ambiguous is None:
            tally.ambiguous = f"line {line}: {error.message}" if line else error.message
    except InputError as error:
        if source != REFUSED:
            tally.refused += 1
            if tally.first_refusal is None:
                tally.first_refusal = f"line {line}: {error}" if line else str(error)


def _own_unit(raw: object, analyte: str) -> str | None:
    """The unit written in the value itself (`180 pg/mL`), if any."""
    try:
        # Only the unit is wanted here, so any decimal convention splits the text.
        return read_result(cell_text(raw, analyte).strip(), analyte, decimal=POINT).unit
    except InputError:
        return None


def _no_unit(analyte: str, ranges: Ranges, policy: ReadPolicy) -> str:
    """What `measure` does with a value that has no unit from anywhere."""
    if ranges.units.one_scale(analyte):
        return SINGLE_SCALE
    return REFUSED if policy.strict else ASSUMED


def _summarize(reading, tally: Tally, static, ranges: Ranges, policy: ReadPolicy) -> None:
    """The unit, its source, the units seen and the notes of one analyte column or test."""
    analyte = tally.analyte or ""
    canonical = ranges.analytes[analyte].canonical_unit
    values = sum(tally.sources.values())
    if values:
        order = {name: rank for rank, name in enumerate(UNIT_SOURCES)}
        source = max(tally.sources, key=lambda s: (tally.sources[s], -order[s]))
    elif static is not None:
        source = static[0]
    else:
        source = _no_unit(analyte, ranges, policy)
    if source in (ASSUMED, SINGLE_SCALE):
        unit = canonical
    elif source == REFUSED:
        unit = None
    elif tally.units:
        unit = tally.units.most_common(1)[0][0]
    else:
        unit = static[1] if static is not None and source != UNIT_COLUMN else None
    reading.unit = unit
    reading.unit_source = source
    reading.unit_sources = dict(tally.sources.most_common())
    reading.units_seen = dict(tally.units.most_common())
    reading.empty_share = _share(tally.empty, tally.rows) if tally.rows else None
    notes = reading.notes
    if tally.rows and not values:
        notes.append("no value in the sample")
    if len(set(tally.sources) - {ASSUMED, REFUSED}) > 1:  # no unit at all: its own note
        notes.append(
            "unit from "
            + ", ".join(f"{SOURCE_NAMES[s]}: {n:,}" for s, n in tally.sources.most_common())
        )
    if not values:
        pass  # the unit line says what a value would take
    elif source == ASSUMED and tally.ambiguous:
        pass  # the note below says why the run stops
    elif source == ASSUMED:
        notes.append(f"no unit anywhere: read as {canonical} (the canonical unit), with a warning")
    elif source == REFUSED:
        notes.append("no unit anywhere: refused under --strict (each such row is bad)")
    else:
        if tally.sources.get(ASSUMED):
            notes.append(
                f"{_values(tally.sources[ASSUMED])} no unit anywhere: read as {canonical} "
                "(the canonical unit), with a warning"
            )
        if tally.sources.get(REFUSED):
            notes.append(
                f"{_values(tally.sources[REFUSED])} no unit anywhere: refused under --strict"
            )
    for unit_text, count in tally.units.items():
        try:
            ranges.units.factor(analyte, unit_text)
        except UnitError:
            notes.append(
                f"unit '{unit_text}' ({count:,} {'value' if count == 1 else 'values'}) is not "
                f"one {analyte} accepts"
            )
    if tally.ambiguous:
        name = (getattr(reading, "header", "") or analyte).strip()
        notes.append(
            f"values without a unit read apart in two common units: the run stops before any "
            f"row; give the unit with --unit '{name}=UNIT' (e.g. {tally.ambiguous})"
        )
    if tally.refused:
        notes.append(
            f"{tally.refused:,} of {_n(values, 'value')} would be refused (their rows marked bad), "
            f"e.g. {tally.first_refusal}"
        )


def _field_notes(
    reading: ColumnReading, key: str, rows: list, index: int, policy: ReadPolicy
) -> None:
    """Dates (ambiguous slash dates), sex and age that the run could not read."""
    parse = _FIELD_PARSERS.get(key)
    if parse is None:
        return
    ambiguous: list[tuple[int, str]] = []
    bad: list[tuple[int, str]] = []
    unstated: list[tuple[int, str]] = []
    for line, cells in rows:
        raw = _cell(cells, index)
        if isinstance(raw, str) and is_missing(raw):
            continue
        if key == "sex" and sex_not_stated(raw):
            unstated.append((line, str(raw).strip()[:30]))
            continue
        try:
            if parse is parse_date:
                parse_date(raw, reading.header, policy.date_order)
            else:
                parse(raw, reading.header)
        except InputError as error:
            target = ambiguous if "ambiguous" in error.message else bad
            target.append((line, str(raw).strip()[:30]))
    if parse is parse_date and policy.date_order:
        layout = {"dmy": "DD/MM/YYYY", "mdy": "MM/DD/YYYY", "ymd": "YYYY-MM-DD"}
        reading.notes.append(f"slash dates read as {layout[policy.date_order]} (--date-format)")
    if ambiguous:
        line, text = ambiguous[0]
        reading.notes.append(
            f"{_n(len(ambiguous), 'ambiguous slash date')} (e.g. '{text}' at line {line}): "
            "refused; give --date-format DD/MM/YYYY or MM/DD/YYYY"
        )
    if bad:
        line, text = bad[0]
        reading.notes.append(
            f"{_n(len(bad), 'value')} cannot be read as {key.replace('_', ' ')} (e.g. '{text}' at "
            f"line {line}); those rows are marked bad"
        )
    if unstated:
        line, text = unstated[0]
        reading.notes.append(
            f"{_n(len(unstated), 'value')} with no female or male sex (e.g. '{text}' at line "
            f"{line}): read as sex not given, with a warning"
        )


def _anc_note(plan: ExportPlan, present: set, policy: ReadPolicy) -> None:
    if ANC.applies(present):
        plan.notes.append(
            "ANC is derived from WBC x neutrophil % where a panel has both"
            + (" (refused under --strict)" if policy.strict else " (the report says so)")
        )


def _sample_notes(plan: ExportPlan, columns: ColumnPlan, sample: list) -> None:
    if not sample:
        plan.notes.append("the export has a header but no data rows")
        return
    problems = [r for r in sample if r.cells is None or r.problem]
    if problems:
        first = problems[0]
        plan.notes.append(
            f"{_n(len(problems), 'row')} of the sample cannot be read as CSV (each its own bad "
            f"record), e.g. line {first.line}: {first.problem}"
        )
    width = len(columns.header)
    uneven = [r for r in sample if r.cells is not None and len(r.cells) != width]
    if uneven and columns.layout == "wide":
        plan.notes.append(
            f"{_n(len(uneven), 'row')} of the sample with a field count other than the "
            f"header's {width} (e.g. line {uneven[0].line}: {len(uneven[0].cells)}); marked bad"
        )
    if "patient_id" not in columns.fields:
        plan.notes.append("no patient column: records carry no patient id")
    if "date" not in columns.fields:
        plan.notes.append("no collection date column: panels are evaluated as of today (--as-of)")
    if columns.layout == "long":
        keys = [k for k in ("patient_id", "date", "accession") if k in columns.fields]
        if keys:
            plan.notes.append(
                "rows of one panel are grouped by " + ", ".join(k.replace("_", " ") for k in keys)
            )


def _n(count: int, noun: str) -> str:
    """`1 row`, `2,000 rows`."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _values(count: int) -> str:
    """`1 value has`, `3 values have`."""
    return f"{count:,} value has" if count == 1 else f"{count:,} values have"


def _cell(cells, index: int | None) -> object:
    if index is None or index >= len(cells):
        return ""
    return cells[index]


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def _counted(items: Iterable[str]) -> dict[str, int]:
    return dict(Counter(item for item in items if item and not is_missing(item)).most_common())


def _unread_notes(plan: ExportPlan, tests: dict[str, str | None], ranges: Ranges) -> None:
    """A skipped test that resembles an analyte is named with it, as the run names it."""
    from b12lab.batch.rows import unread_test_note
    from b12lab.reading.policy import TEST_NOT_READ

    for test, display in tests.items():
        note = unread_test_note(ranges, test, display)
        if note.kind == TEST_NOT_READ:
            plan.notes.append(note.message)
