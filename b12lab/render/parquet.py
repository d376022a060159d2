"""Batch output as Parquet: the records of a run as typed columns.

The rows are the CSV output's rows, in the same order (error rows included),
with each cell typed:

- `line`: int64; `patient_id`, `b12_status`, the flags, `highest_severity`,
  `guideline`, the kept columns and `error`: strings (null where the CSV cell
  is empty);
- `panel_date`: date32;
- the finding columns, `other_findings` and `missing`: lists of ids, and
  `warnings`: a list of sentences (empty lists where there are none);
- each normalized value column (`b12_pmol_l`): float64, the value exactly as
  b12lab used it, with its comparator (`<`, `<=`, `>`, `>=`), when the value is
  censored, in a string column of its own named `<column>_comparator`.

There is no `provenance` column: what the CSV's column holds is in the file's
key-value metadata (`b12lab.provenance`, and each of its parts as
`b12lab.<part>`: `b12lab.b12lab_version`, `b12lab.ranges_sha256`,
`b12lab.guideline`, `b12lab.evaluated_on`), with the run's options as JSON
(`b12lab.options`) and this column set's version (`b12lab.parquet_columns`).

pyarrow is imported only when Parquet is written.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import BinaryIO

from b12lab.batch.rows import BatchRecord
from b12lab.output_columns import BASE_COLUMNS, ERROR_COLUMN, OutputColumns

PARQUET_COLUMNS_VERSION = 1
COMPARATOR_SUFFIX = "_comparator"
ROW_GROUP_ROWS = 65_536
METADATA_PREFIX = "b12lab."
_LIST_COLUMNS = frozenset(
    (
        "platelets_findings",
        "neutrophils_findings",
        "ferritin_findings",
        "other_findings",
        "missing",
        "warnings",
    )
)


def parquet_column_names(columns: OutputColumns) -> list[str]:
    """The Parquet columns of a run, in order: the CSV's, without `provenance`, each
    value column followed by its comparator column."""
    names = [name for name in BASE_COLUMNS if name != "provenance"]
    for value in columns.value_names:
        names += [value, value + COMPARATOR_SUFFIX]
    names += [kept.name for kept in columns.kept]
    return [*names, ERROR_COLUMN]


class ParquetRecords:
    """Writes batch records to a binary stream as one Parquet file, row group by row group."""

    def __init__(
        self,
        stream: BinaryIO,
        columns: OutputColumns,
        options: Mapping[str, object] | None = None,
    ):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        self.columns = columns
        self.options = dict(options or {})
        self.names = parquet_column_names(columns)
        self.schema = pa.schema([(name, self._type(name)) for name in self.names])
        self.writer = pq.ParquetWriter(stream, self.schema)
        self.cells: dict[str, list] = {name: [] for name in self.names}
        self.provenance: dict[tuple[tuple[str, str], ...], None] = {}

    def _type(self, name: str):
        pa = self._pa
        if name == "line":
            return pa.int64()
        if name == "panel_date":
            return pa.date32()
        if name in _LIST_COLUMNS:
            return pa.list_(pa.string())
        if name in self.columns.value_names:
            return pa.float64()
        return pa.string()

    def write(self, record: BatchRecord) -> None:
        outcome = record.outcome
        cells = self.cells
        cells["line"].append(record.first_line)
        cells["patient_id"].append(record.patient_id or None)
        cells["panel_date"].append(record.panel_date)
        cells["b12_status"].append(outcome.b12_status or None)
        domains = ("platelets", "neutrophils", "ferritin")
        for domain, flag, found in zip(
            domains, outcome.flags, outcome.domain_findings, strict=True
        ):
            cells[f"{domain}_flag"].append(flag or None)
            cells[f"{domain}_findings"].append(list(found))
        cells["other_findings"].append(list(outcome.other_findings))
        cells["highest_severity"].append(outcome.highest_severity)
        cells["missing"].append(list(outcome.missing))
        cells["warnings"].append(list(record.warnings))
        cells["guideline"].append(record.guideline or None)
        for name, (number, comparator) in zip(
            self.columns.value_names, record.value_numbers(self.columns.values), strict=True
        ):
            cells[name].append(number)
            cells[name + COMPARATOR_SUFFIX].append(comparator or None)
        kept = record.kept or ("",) * len(self.columns.kept)
        for column, cell in zip(self.columns.kept, kept, strict=True):
            cells[column.name].append(cell or None)
        cells[ERROR_COLUMN].append("; ".join(record.errors) or None)
        if record.provenance:
            self.provenance.setdefault(record.provenance, None)
        if len(cells["line"]) >= ROW_GROUP_ROWS:
            self._flush()

    def write_block(self, decided) -> None:
        """A decided block of rows (the columnar path, `b12lab.batch.columnar.Decided`): each row
        as its record would be written; a refused row is its record."""
        from b12lab.decision import warnings
        from b12lab.output_columns import kept_cell

        cells = self.cells
        template = decided.template.tolist()
        patients = decided.patient_id.to_pylist()
        dates = decided.panel_date.to_pylist()
        readings = list(decided.readings.values())  # every analyte column, in column order
        values = [decided.readings.get(analyte) for analyte in self.columns.values]
        kept = [column.to_pylist() for column in decided.kept]
        shared: dict[int, tuple] = {}  # a decision's cells, made once
        for row, line in enumerate(decided.lines.tolist()):
            record = decided.errors.get(row)
            if record is not None:
                self.write(record)
                continue
            number = template[row]
            found = shared.get(number)
            if found is None:
                decision = decided.decisions[number]
                found = shared[number] = self._decision_cells(decision)
                if decision.provenance:
                    self.provenance.setdefault(decision.provenance, None)
            decided_cells, own_warnings = found
            cells["line"].append(line)
            cells["patient_id"].append(patients[row] or None)
            cells["panel_date"].append(dt.date.fromisoformat(dates[row]) if dates[row] else None)
            for name, cell in decided_cells:
                cells[name].append(cell)
            noted: list[str] = []
            for gids, found_readings in readings:
                noted.extend(str(note) for note in found_readings[gids[row]].notes)
            cells["warnings"].append(list(warnings(tuple(dict.fromkeys(noted)), own_warnings)))
            for name, found_values in zip(self.columns.value_names, values, strict=True):
                reading = found_values[1][found_values[0][row]] if found_values else None
                shown = reading is not None and reading.value == reading.value  # not NaN
                cells[name].append(reading.value if shown else None)
                cells[name + COMPARATOR_SUFFIX].append(reading.comparator if shown else None)
            for column, raw in zip(self.columns.kept, kept, strict=True):
                cells[column.name].append(kept_cell(raw[row]) or None)
            cells[ERROR_COLUMN].append(None)
            if len(cells["line"]) >= ROW_GROUP_ROWS:
                self._flush()

    @staticmethod
    def _decision_cells(decision) -> tuple[tuple[tuple[str, object], ...], tuple[str, ...]]:
        """The cells a decision gives every row it decides (lists copied per row), and its
        own warnings."""
        outcome = decision.outcome
        found: list[tuple[str, object]] = [("b12_status", outcome.b12_status or None)]
        domains = ("platelets", "neutrophils", "ferritin")
        for domain, flag, ids in zip(domains, outcome.flags, outcome.domain_findings, strict=True):
            found += [(f"{domain}_flag", flag or None), (f"{domain}_findings", list(ids))]
        found += [
            ("other_findings", list(outcome.other_findings)),
            ("highest_severity", outcome.highest_severity),
            ("missing", list(outcome.missing)),
            ("guideline", decision.guideline or None),
        ]
        return tuple(found), decision.warnings

    def _flush(self) -> None:
        if not self.cells["line"]:
            return
        pa = self._pa
        arrays = [
            pa.array(self.cells[name], field.type)
            for name, field in zip(self.names, self.schema, strict=True)
        ]
        self.writer.write_batch(pa.record_batch(arrays, schema=self.schema))
        for values in self.cells.values():  # emptied in place: a writer may hold them
            values.clear()

    def metadata(self) -> dict[str, str]:
        """The file's key-value metadata: provenance, its parts, the run's options."""
        found = list(self.provenance)
        shown = "\n".join(" ".join(f"{k}={v}" for k, v in items) for items in found)
        metadata = {"provenance": shown, "parquet_columns": str(PARQUET_COLUMNS_VERSION)}
        if len(found) == 1:
            metadata.update(found[0])
        metadata["options"] = json.dumps(self.options, sort_keys=True, default=_plain)
        return {METADATA_PREFIX + key: value for key, value in metadata.items()}

    def close(self) -> None:
        self._flush()
        self.writer.add_key_value_metadata(self.metadata())
        self.writer.close()


def _plain(value: object) -> object:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)
