"""The columns of batch CSV output, versioned: b12lab's own, the normalized values, --keep.

`CSV_COLUMNS_VERSION` names the column set; it changes whenever a column is
added, removed, renamed or moved. Version 2, in order:

- the version 1 columns up to `provenance` (`line` ... `provenance`);
- one normalized-value column per analyte the export has a column or test
  for, named analyte key + canonical unit slug (`b12_pmol_l`,
  `platelets_10e9_l`), in the order of the ranges file; for a long layout
  and for laboratory messages, whose tests are known only once read, one per
  analyte of the ranges file;
- the `--keep` columns, in the order given;
- `error`.

A kept column is written under the export's own header name; when that name
is one of b12lab's own column names (compared ignoring case), or a name
already given to another kept column, it is prefixed with `export.` (again
until it is free). JSON and NDJSON records carry the same names in a `kept`
object.

This module imports nothing heavy: the one-patient path never needs it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from b12lab.errors import InputError, option
from b12lab.ranges import Ranges, column_key

CSV_COLUMNS_VERSION = 2
COLLISION_PREFIX = "export."

BASE_COLUMNS = (
    "line",
    "patient_id",
    "panel_date",
    "b12_status",
    "platelets_flag",
    "platelets_findings",
    "neutrophils_flag",
    "neutrophils_findings",
    "ferritin_flag",
    "ferritin_findings",
    "other_findings",
    "highest_severity",
    "missing",
    "warnings",
    "guideline",
    "provenance",
)
ERROR_COLUMN = "error"


def unit_slug(unit: str) -> str:
    """A unit made safe for a column name: `pmol/L` -> `pmol_l`, `10^9/L` -> `10e9_l`,
    `%` -> `pct`, `mL/min/1.73m2` -> `ml_min_1_73m2`."""
    text = unit.replace("µ", "u").replace("μ", "u").replace("%", "pct").replace("^", "e")
    return re.sub(r"[^0-9a-z]+", "_", text.casefold()).strip("_")


def value_column(ranges: Ranges, analyte: str) -> str:
    """`b12_pmol_l`: the analyte key and the slug of its canonical unit."""
    return f"{analyte}_{unit_slug(ranges.analytes[analyte].canonical_unit)}"


def plain_number(value: float) -> str:
    """A value as b12lab used it, exactly, in plain decimal notation.

    Canonical values are rounded to ten significant digits when converted
    (`b12lab.units.to_canonical`) and are the number as written otherwise, so
    the shortest text that reads back as the same float (`repr`) has no
    binary noise; it is written without an exponent and without trailing
    zeros: 295.115833, 0.3, 150.
    """
    if value == 0:
        return "0"
    text = format(Decimal(repr(float(value))).normalize(), "f")
    return text


def normalized_cell(value: float, censored: str | None) -> str:
    """The value column's cell: `295.2`, or with its comparator `<73.77895824`."""
    return f"{censored or ''}{plain_number(value)}"


@dataclass(frozen=True)
class KeptColumn:
    """An export column copied through into every output record."""

    index: int  # 0-based position in the export header
    header: str  # the export's own name for it
    name: str  # the output column (and `kept` key) it is written under


@dataclass(frozen=True)
class OutputColumns:
    """The columns one run writes: which analytes have a value column, which are kept."""

    values: tuple[str, ...] = ()  # analyte keys
    value_names: tuple[str, ...] = ()
    kept: tuple[KeptColumn, ...] = ()

    @property
    def csv_header(self) -> tuple[str, ...]:
        return (*BASE_COLUMNS, *self.value_names, *(k.name for k in self.kept), ERROR_COLUMN)


def value_analytes(ranges: Ranges, present: Iterable[str] | None) -> tuple[str, ...]:
    """Analytes with a value column, in the ranges file's order: those `present`
    (a wide export's columns) or, with None, every analyte."""
    wanted = set(ranges.analytes) if present is None else set(present)
    return tuple(key for key in ranges.analytes if key in wanted)


def output_columns(
    ranges: Ranges,
    present: Iterable[str] | None,
    header: Sequence[str] = (),
    keep: Sequence[str] = (),
) -> OutputColumns:
    values = value_analytes(ranges, present)
    return OutputColumns(
        values=values,
        value_names=tuple(value_column(ranges, a) for a in values),
        kept=kept_columns(header, keep, ranges),
    )


def split_keep(entries: Sequence[str], header: Sequence[str]) -> list[str]:
    """`--keep` options as column names: each is COL[,COL...]; an entry that is a header
    name as a whole (one with a comma in it) is taken whole."""
    whole = {name.strip() for name in header}
    names: list[str] = []
    for entry in entries:
        if entry.strip() in whole:
            names.append(entry.strip())
            continue
        names.extend(part.strip() for part in entry.split(","))
    return names


def kept_columns(
    header: Sequence[str], entries: Sequence[str], ranges: Ranges
) -> tuple[KeptColumn, ...]:
    """The --keep columns resolved against the header; InputError naming an unknown one.

    A name matches a header name as written (spaces around it aside) or, failing
    that, as other header names are matched (ignoring case, spaces, `_`, `-`, `.`).
    A column named twice is kept once.
    """
    if not entries:
        return ()
    shown = [str(name).strip() for name in header]
    taken = {c.casefold() for c in (*BASE_COLUMNS, ERROR_COLUMN)}
    taken |= {value_column(ranges, a).casefold() for a in ranges.analytes}
    kept: list[KeptColumn] = []
    for name in split_keep(entries, shown):
        index = _header_index(name, shown)
        if any(k.index == index for k in kept):
            continue
        output = shown[index] or f"column {index + 1}"
        while output.casefold() in taken:
            output = COLLISION_PREFIX + output
        taken.add(output.casefold())
        kept.append(KeptColumn(index, shown[index], output))
    return tuple(kept)


def _header_index(name: str, header: list[str]) -> int:
    if not name:
        raise InputError(
            f"{option('--keep')}: an empty column name",
            fix="give export column names separated by commas, e.g. "
            + option("--keep", "MRN,accession"),
        )
    if name in header:
        return header.index(name)
    key = column_key(name)
    matches = [i for i, h in enumerate(header) if key and column_key(h) == key]
    if len(matches) == 1:
        return matches[0]
    if matches:
        several = ", ".join(f"'{header[i]}'" for i in matches)
        raise InputError(
            f"{option('--keep', name, quoted=True)} matches several export columns ({several})",
            fix="give the column name exactly as the header writes it",
        )
    listed = ", ".join(f"'{h}'" for h in header)
    raise InputError(
        f"{option('--keep', name, quoted=True)}: no such column in the export header ({listed})",
        fix="give one of the header's column names",
    )


def kept_cell(raw: object) -> str:
    """An export cell as kept: text unchanged, None or NaN empty, other values as `str`."""
    if raw is None or (isinstance(raw, float) and raw != raw):  # None, NaN: no cell
        return ""
    return raw if isinstance(raw, str) else str(raw)
