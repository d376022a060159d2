"""Which export column means what: analytes, units, patient, date, sex, age; wide or long.

Names are compared ignoring case, spaces, `_`, `-` and `.`, against each
analyte's aliases and LOINC codes and the field names below; `--map
COLUMN=KEY` overrides any of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from b12lab.errors import InputError, option
from b12lab.ranges import Ranges, column_key
from b12lab.reading.policy import COMMA, POINT, UNKNOWN
from b12lab.reading.values import UnitHint, decimal_evidence

FIELD_NAMES = {
    "patient_id": (
        "patient_id",
        "patient",
        "patient id",
        "mrn",
        "subject",
        "subject_id",
        "patient number",
        "pid",
        "patientid",
    ),
    "date": (
        "date",
        "collected",
        "collection_date",
        "collected_date",
        "specimen date",
        "collection date",
        "sample date",
        "specimen_collected",
        "date collected",
        "panel_date",
        "draw date",
    ),
    "sex": ("sex", "gender"),
    "age": ("age", "age_years"),
    "b12_therapy_start": ("b12_therapy_start", "therapy_start", "b12 therapy start"),
    "test": (
        "test",
        "test_name",
        "analyte",
        "loinc",
        "code",
        "test code",
        "observation",
        "component",
    ),
    "value": ("value", "result", "result value", "result_value"),
    "unit": ("unit", "units", "result unit"),
    "accession": (
        "accession",
        "accession number",
        "accession_no",
        "specimen id",
        "specimen_id",
        "sample id",
        "sample_id",
        "order number",
        "order_id",
        "lab number",
        "request id",
    ),
}
FIELDS = tuple(FIELD_NAMES)
_FIELD_INDEX = {column_key(name): key for key, names in FIELD_NAMES.items() for name in names}
_UNIT_IN_HEADER = re.compile(r"^(?P<name>.*?)\s*[\(\[](?P<unit>[^\)\]]+)[\)\]]\s*$")
_UNIT_SUFFIXES = ("units", "unit", "uom")

# Where a value without its own unit takes one from, in this order (see `unit_choice`).
UNIT_COLUMN = "unit_column"  # the row's unit cell (wide: <analyte>_unit; long: unit)
HEADER_UNIT = "header"  # the column header: `B12 (pg/mL)`
UNIT_OPTION = "unit_option"  # --unit COLUMN=UNIT or --unit ANALYTE=UNIT


@dataclass
class AnalyteColumn:
    index: int
    analyte: str
    name: str
    header_unit: str | None = None
    unit_index: int | None = None
    given_unit: str | None = None  # from --unit COLUMN=UNIT or --unit ANALYTE=UNIT


@dataclass
class ColumnPlan:
    """How to read each row of an export with this header."""

    header: list[str]
    layout: str  # "wide" or "long"
    fields: dict[str, int] = field(default_factory=dict)
    analytes: list[AnalyteColumn] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tests: dict[str, str] = field(default_factory=dict)  # --map for long-layout test codes
    analyte_units: dict[str, str] = field(default_factory=dict)  # --unit ANALYTE=UNIT

    def value_indices(self) -> list[int]:
        """The columns that hold results: the value column of a long export, else each analyte's."""
        if self.layout == "long":
            return [self.fields["value"]]
        return [column.index for column in self.analytes]


@dataclass(frozen=True)
class DecimalMark:
    """The decimal mark an export's values show, and what to tell the user about it."""

    mark: str | None  # POINT, COMMA or UNKNOWN
    note: str | None  # None when the values show no mark at all


def sample_decimal_mark(
    plan: ColumnPlan, rows: Iterable[tuple[int, Sequence[str] | None]]
) -> DecimalMark:
    """POINT or COMMA when the sampled values show only one decimal mark, else UNKNOWN.

    `rows` are (line number, cells). With one mark, numbers such as `1.476`
    are read by it (and the note says so, with where it was first seen);
    with both, or none, such numbers are refused, naming both readings.
    """
    seen: dict[str, tuple[int, str]] = {}
    indices = plan.value_indices()
    for line, cells in rows:
        if cells is None:
            continue
        for index in indices:
            if index < len(cells):
                mark = decimal_evidence(cells[index])
                if mark is not None and mark not in seen:
                    seen[mark] = (line, plan.header[index].strip())
    if len(seen) == 1:
        ((mark, (line, column)),) = seen.items()
        return DecimalMark(
            POINT if mark == "." else COMMA,
            f"decimal mark: '{mark}' (the only one the values use, first at line {line}, "
            f"column '{column}')",
        )
    if len(seen) == 2:
        return DecimalMark(
            UNKNOWN,
            f"the values use both '.' (line {seen['.'][0]}, column '{seen['.'][1]}') and ',' "
            f"(line {seen[','][0]}, column '{seen[','][1]}') as decimal marks; a value such as "
            "1.476 is refused unless --decimal is given",
        )
    return DecimalMark(UNKNOWN, None)


def parse_units(entries: Sequence[str]) -> dict[str, str]:
    """`--unit KEY=UNIT` options as {column_key(KEY): UNIT}; KEY a column or an analyte key."""
    units = {}
    for entry in entries:
        key, sep, unit = entry.partition("=")
        if not sep or not key.strip() or not unit.strip():
            raise InputError(
                f"--unit '{entry}' is not KEY=UNIT", fix="e.g. --unit B12=pg/mL or --unit b12=pg/mL"
            )
        units[column_key(key)] = unit.strip()
    return units


def parse_map(entries: Sequence[str], ranges: Ranges) -> dict[str, str]:
    """`--map COLUMN=KEY` options as {column_key: key}."""
    mapping = {}
    for entry in entries:
        column, sep, key = entry.partition("=")
        key = key.strip()
        if not sep or not column.strip() or not key:
            raise InputError(
                f"{option('--map', entry, quoted=True)} is not COLUMN=KEY",
                fix=f"e.g. {option('--map', 'Vit B12 (ng/L)=b12', quoted=True)}",
            )
        if key not in ranges.analytes and key not in FIELDS:
            raise InputError(
                f"{option('--map', entry, quoted=True)}: unknown key '{key}'",
                fix="use an analyte key ("
                + ", ".join(ranges.analytes)
                + ") or "
                + ", ".join(FIELDS),
            )
        mapping[column_key(column)] = key
    return mapping


def _analyte_and_unit(name: str, ranges: Ranges) -> tuple[str | None, str | None]:
    analyte = ranges.analyte_for(name)
    if analyte:
        return analyte, None
    match = _UNIT_IN_HEADER.match(name)
    if match:
        analyte = ranges.analyte_for(match.group("name"))
        if analyte:
            return analyte, match.group("unit").strip()
    return None, None


def _checked_header_unit(
    name: str, analyte: str, unit: str, ranges: Ranges, notes: list[str]
) -> str | None:
    """The unit a header names, if it is one the analyte accepts.

    `Ferritin (serum)` names no unit: the header is matched without it and a
    note says so. `PLT (mg/L)` names a unit platelets cannot have: refused.
    """
    from b12lab.errors import UnitError
    from b12lab.units import grammatical

    try:
        ranges.units.factor(analyte, unit)
        return unit
    except UnitError as error:
        if ranges.units.lists(analyte, unit) or grammatical(unit):
            raise InputError(
                f"column '{name}': {error.message}",
                fix=f"{error.fix}; or give the right unit with "
                f"{option('--unit', f'{name}=UNIT', quoted=True)}",
            ) from None
    notes.append(f"column '{name}': '({unit})' is not a unit; the column's values need their own")
    return None


def apply_units(plan: ColumnPlan, units: Mapping[str, str], ranges: Ranges) -> None:
    """`--unit KEY=UNIT`: a unit for a column (or an analyte's columns) that has none."""
    used = set()
    for column in plan.analytes:
        for key in (column_key(column.name), column.analyte):
            if key in units:
                column.given_unit = units[key]
                used.add(key)
                break
    for key, unit in units.items():
        if key in ranges.analytes:
            plan.analyte_units[key] = unit
            used.add(key)
    unknown = set(units) - used
    if unknown:
        raise InputError(
            f"{option('--unit')} names neither a lab column nor an analyte: "
            + ", ".join(sorted(unknown)),
            fix="use a column name of the header or an analyte key (b12, platelets, ...)",
        )
    checks = [(c.analyte, c.given_unit) for c in plan.analytes if c.given_unit]
    checks += list(plan.analyte_units.items())
    for analyte, unit in checks:
        ranges.units.factor(analyte, unit)  # an unaccepted unit fails here, before any row


def unit_choice(
    unit_text: object, header_unit: str | None, given: str | None
) -> tuple[str, str] | None:
    """(source, unit) for a value that carries no unit of its own, or None.

    The row's unit cell first, then the header's unit, then --unit. With none
    of them the canonical unit is assumed with a warning (refused under
    --strict) by `measure`; a unit written in the value itself beats them all.
    """
    units = _given_units(unit_text, header_unit, given)
    return units[0] if units else None


def _given_units(
    unit_text: object, header_unit: str | None, given: str | None
) -> list[tuple[str, str]]:
    """(source, unit) of each unit given apart from the value, in order of precedence."""
    candidates = ((UNIT_COLUMN, unit_text), (HEADER_UNIT, header_unit), (UNIT_OPTION, given))
    return [
        (source, text.strip())
        for source, text in candidates
        if isinstance(text, str) and text.strip()
    ]


_HINT_SOURCES = {
    UNIT_COLUMN: "unit column of '{}'",
    HEADER_UNIT: "header '{}'",
    UNIT_OPTION: "--unit for '{}'",
}


def unit_hint(
    column_name: str, unit_text: object, header_unit: str | None, given: str | None
) -> UnitHint | None:
    """`unit_choice` as the hint `measure` takes, its source named for messages, with
    the units of lower precedence also given (`measure` notes the ones that disagree)."""
    if unit_text is None or type(unit_text) is str:  # a batch asks for the same few often
        return _known_hint(column_name, unit_text, header_unit, given)
    return _hint_of(column_name, unit_text, header_unit, given)


@lru_cache(maxsize=4096)
def _known_hint(
    column_name: str, unit_text: str | None, header_unit: str | None, given: str | None
) -> UnitHint | None:
    return _hint_of(column_name, unit_text, header_unit, given)


def _hint_of(
    column_name: str, unit_text: object, header_unit: str | None, given: str | None
) -> UnitHint | None:
    units = _given_units(unit_text, header_unit, given)
    if not units:
        return None
    (source, unit), *others = units
    overridden = tuple((other, _HINT_SOURCES[kind].format(column_name)) for kind, other in others)
    return UnitHint(unit, _HINT_SOURCES[source].format(column_name), overridden)


def test_analyte(plan: ColumnPlan, test: str, ranges: Ranges) -> str | None:
    """The analyte a long export's test name or code (or a message's code) means, if any."""
    if not test:
        return None
    return plan.tests.get(column_key(test)) or ranges.analyte_for(test)


def unit_column_of(name: str, ranges: Ranges) -> str | None:
    key = column_key(name)
    for suffix in _UNIT_SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            return ranges.analyte_for(key[: -len(suffix)])
    return None


def plan_columns(
    header: list[str],
    ranges: Ranges,
    *,
    layout: str = "auto",
    mapping: Mapping[str, str] | None = None,
) -> ColumnPlan:
    """Match every header cell; raises InputError if no column holds lab values."""
    mapping = dict(mapping or {})
    plan = ColumnPlan(header=header, layout="wide")
    unit_columns: dict[str, int] = {}
    seen_analytes: dict[str, str] = {}
    used_maps = set()
    for index, raw_name in enumerate(header):
        name = raw_name.strip()
        key = column_key(name)
        target = mapping.get(key)
        if target is not None:
            used_maps.add(key)
        header_unit = None
        if target is None:
            target = _FIELD_INDEX.get(key)
        if target is None:
            target, header_unit = _analyte_and_unit(name, ranges)
        elif target not in FIELDS:
            # A mapped column keeps the unit its header names: `Vit B12 (ng/L)=b12`.
            match = _UNIT_IN_HEADER.match(name)
            header_unit = match.group("unit").strip() if match else None
        if header_unit is not None and target not in FIELDS:
            header_unit = _checked_header_unit(name, target, header_unit, ranges, plan.notes)
        if target is None:
            unit_of = unit_column_of(name, ranges)
            if unit_of is not None:
                unit_columns[unit_of] = index
                continue
            plan.ignored.append(name or f"(column {index + 1})")
            close = ranges.close_analyte(name) if name else None
            if close is not None:
                plan.notes.append(
                    f"column '{name[:40]}' ignored: did you mean {close}? "
                    f"(add --map '{name[:40]}={close}')"
                )
            continue
        if target in FIELDS:
            if target in plan.fields:
                plan.notes.append(
                    f"columns '{header[plan.fields[target]]}' and '{name}' both "
                    f"mean {target}; the first is used"
                )
                continue
            plan.fields[target] = index
            continue
        if target in seen_analytes:
            plan.notes.append(
                f"columns '{seen_analytes[target]}' and '{name}' both hold "
                f"{target}; a row with values in both is reported"
            )
        seen_analytes.setdefault(target, name)
        plan.analytes.append(AnalyteColumn(index, target, name, header_unit))
    for column in plan.analytes:
        column.unit_index = unit_columns.get(column.analyte)
    unused = set(mapping) - used_maps
    long_ready = "test" in plan.fields and "value" in plan.fields
    unused_analytes = {key for key in unused if mapping[key] in ranges.analytes}
    if long_ready and not plan.analytes and unused == unused_analytes:
        # In a long export, --map CODE=ANALYTE names a test code or name.
        plan.tests = {key: mapping[key] for key in unused}
    elif unused:
        raise InputError(
            f"{option('--map')} names a column the header does not have: "
            + ", ".join(sorted(unused)),
            fix="header columns: " + ", ".join(h.strip() for h in header)[:300],
        )
    if layout == "auto":
        plan.layout = "long" if long_ready and not plan.analytes else "wide"
    else:
        plan.layout = layout
    if plan.layout == "long" and not long_ready:
        raise InputError(
            f"{option('--layout', 'long')} needs a test column and a value column",
            fix=f"name them (e.g. test, result) or use {option('--map', 'COLUMN=test')}",
        )
    if plan.layout == "wide" and not plan.analytes:
        raise InputError(
            "the header has no lab columns: " + ", ".join(h.strip() for h in header)[:200],
            fix="name columns by analyte (B12, PLT, 2132-9, ...), give test/value columns for "
            f"a long export, or use {option('--map', 'COLUMN=ANALYTE')}",
        )
    return plan
