"""Wide exports decided column by column on Apache Arrow.

The same records as `RowInterpreter` (b12lab.batch.rows), computed so that each
distinct thing is done once:

- each column is dictionary-encoded, and each distinct cell (with its unit
  cell) is read once through the reading layer, exactly as a row would read it;
- values are placed among the cut points of the limits in force (`positions`
  over each column's distinct cells, once per limits group: sex and age band);
- the positions, the limits group (sex and age band) and what the report
  quotes exactly form a key per row; each distinct key is decided once
  (`DecisionCore.decide_once`), on the panel of one of its rows, made of the
  measurements and fields already read (the row path's panel, without the
  warnings and errors a decision never reads);
- the decided columns are joined back to the rows with Arrow `take`;
- to NDJSON or JSON, each row's record is its template key's template
  (b12lab.render.templates, built once per key from the engine's full report,
  which also gives the key's decision) filled with the row's own cells.

A row whose cells the reading layer refuses, or that the policy would refuse
as a whole, goes through the row path on its own, so its record, errors and
line number are the row path's. Equality with the row path is checked by a
property test over generated exports (tests/test_columnar.py).

pyarrow and numpy are imported only here and in the table functions.
"""

from __future__ import annotations

import itertools
import math
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from b12lab.batch.rows import BatchRecord, RowInterpreter
from b12lab.decision import DAYS, MAX_DECISIONS, Decision, positions
from b12lab.derived import ANC, EGFR, Derivation, egfr_equation
from b12lab.errors import InputError
from b12lab.model import Context, Measurement, Panel
from b12lab.output_columns import OutputColumns, kept_cell, normalized_cell
from b12lab.reading.panel import PATIENT_PARSERS
from b12lab.reading.policy import Note
from b12lab.reading.values import MISSING_TOKENS, cell_text, is_missing, measure
from b12lab.render.rows import outcome_cells, spreadsheet_safe
from b12lab.rules.base import therapy_days

CENSORED_BASE = 1 << 20  # a censored cell keys by its own identity, above every position
PY_ASCII_SPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"


@dataclass
class CellReading:
    """One distinct cell of an analyte column (with its unit cell), read once."""

    gid: int
    value: float = math.nan  # canonical; NaN when missing or refused
    censored: bool = False
    comparator: str | None = None  # the censored value's comparator (`<`, `>=`, ...)
    measurement: Measurement | None = None  # as the reading layer gave it (None: no value)
    refused: bool = False
    notes: tuple[Note, ...] = ()
    text: str = ""  # the notes as the warnings column joins them
    # The normalized-value CSV cell (`normalized_cell`, spreadsheet-safe); "" missing or
    # refused.
    shown: str = ""


@dataclass
class FieldReading:
    gid: int
    value: object = None
    refused: bool = False


class SeenCells(list):
    """A column's distinct cells read so far, in the order of their ids (`gid`), with
    arrays over them (one value per cell) made once per cell: a block extends them with
    the cells it added, never makes them again from all the cells of the run."""

    def __init__(self):
        super().__init__()
        self.arrays: dict = {}

    def array(self, name, make):
        """`make(start, cells)` over every cell, kept under `name`: only the cells added
        since the last call are made (a numpy or an Arrow array, joined to the rest)."""
        have = self.arrays.get(name)
        done = 0 if have is None else len(have)
        if have is None or done < len(self):
            more = make(done, self[done:])
            if have is None:
                have = more
            elif isinstance(have, np.ndarray):
                have = np.concatenate([have, more])
            else:
                have = pa.concat_arrays([have, more])
            self.arrays[name] = have
        return have


class SeenTexts:
    """The distinct texts of a column seen so far, each with its id (its place here)."""

    def __init__(self):
        self.strings: list[str] = []
        self.array = pa.array([], pa.string())

    def ids(self, column: pa.Array) -> np.ndarray:
        """Each row's text id (texts not seen before are added)."""
        encoded = pc.dictionary_encode(column)
        dictionary = encoded.dictionary
        found = pc.index_in(dictionary, value_set=self.array)
        ids = pc.fill_null(found, -1).to_numpy().astype(np.int64)
        new = np.flatnonzero(ids < 0)
        if len(new):
            added = dictionary.take(pa.array(new))
            ids[new] = np.arange(len(self.strings), len(self.strings) + len(new))
            self.strings.extend(added.to_pylist())
            self.array = pa.concat_arrays([self.array, added.cast(pa.string())])
        return ids[encoded.indices.to_numpy().astype(np.int64)]


class KnownPairs:
    """Numbers (a pair of text ids) already given a cell id, kept sorted."""

    def __init__(self):
        self.keys = np.empty(0, dtype=np.int64)
        self.gids = np.empty(0, dtype=np.int64)

    def find(self, keys: np.ndarray) -> np.ndarray:
        """The cell id of each of `keys` (sorted, distinct); -1 where none yet."""
        if not len(self.keys):
            return np.full(len(keys), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return np.where(self.keys[at] == keys, self.gids[at], -1)

    def add(self, keys: np.ndarray, gids: np.ndarray) -> None:
        if len(keys):
            keys = np.concatenate([self.keys, keys])
            order = np.argsort(keys, kind="stable")
            self.keys, self.gids = keys[order], np.concatenate([self.gids, gids])[order]


@dataclass
class Decided:
    """One batch of rows, decided: per-row arrays and the decisions they point to."""

    lines: np.ndarray
    patient_id: pa.Array  # string, "" when none
    panel_date: pa.Array  # string ISO date, "" when none
    template: np.ndarray  # index into `decisions` per row
    decisions: list[Decision]
    noted: pa.Array  # the reading layer's notes per row, joined ("" when none)
    errors: dict[int, BatchRecord]  # row index -> the row path's record
    note_counts: dict[tuple[str, str], int] = field(default_factory=dict)
    columns: OutputColumns = field(default_factory=OutputColumns)  # values and --keep to write
    readings: dict[str, tuple[np.ndarray, list[CellReading]]] = field(default_factory=dict)
    kept: list[pa.Array] = field(default_factory=list)  # the --keep columns of the batch
    fragments: dict = field(default_factory=dict)  # decision -> its CSV cells (csv_bytes)
    # What the summary counts: each kind of decision, and each decision's kind.
    counted: tuple[dict, list] = field(default_factory=lambda: ({}, []))
    # NDJSON and JSON output: each row's record as JSON text (None for a row in `errors`).
    json: list[str | None] | None = None


class ColumnarInterpreter:
    """Decides wide-layout Arrow tables with a RowInterpreter's plan, policy and core."""

    def __init__(self, interpreter: RowInterpreter, workers: int = 1):
        if interpreter.plan.layout != "wide" or interpreter.timeline:
            raise ValueError("the columnar path reads wide exports, one record per row")
        self.rows = interpreter
        self.workers = workers  # processes deciding new keys (this one and workers - 1 more)
        self.pool = None
        self.plan = interpreter.plan
        self.ranges = interpreter.ranges
        self.cells: list[dict[tuple, CellReading]] = [{} for _ in self.plan.analytes]
        self.cell_lists = [SeenCells() for _ in self.plan.analytes]  # by gid
        # Text cells: the texts and unit texts seen, and which pair of them is which cell.
        self.cell_texts = [(SeenTexts(), SeenTexts(), KnownPairs()) for _ in self.plan.analytes]
        self.field_cells: dict[str, dict[object, FieldReading]] = {
            key: {} for key in self.plan.fields if key in PATIENT_PARSERS
        }
        self.field_lists = {key: SeenCells() for key in self.field_cells}  # by gid
        self.note_texts: dict[str, int] = {"": 0}  # each joined note text -> its id
        # Each key (`_templates`: bytes) -> the number of its decision in `decided`, which
        # holds each distinct decision once: many keys decide alike, so a key costs only
        # its bytes and its entry here.
        self.decisions: dict[bytes, int] = {}
        self.key_names: dict[tuple, int] = {}  # which parts a key has -> its kind
        self.decided: list[Decision] = []
        self.numbers: dict[Decision, int] = {}  # a decision -> its number in `decided`
        self.fragments: dict = {}  # decision -> its CSV cells once written (`csv_bytes`)
        self.counted: tuple[dict, list] = ({}, [])  # what the summary counts of each
        self.limit_groups: dict[tuple, tuple[int, bool]] = {}
        self.group_limits: list = []  # Limits of each group, by group number
        # NDJSON and JSON output: each row's record is its template key's template
        # (b12lab.render.templates) filled with the row's own cells. A template key (bytes,
        # `_json_records`) -> its template's number in `json_templates` (-1: none, the
        # row's own full report on the row path).
        self.json = interpreter.json_records and interpreter.core.catalogue is None
        self.json_keys: dict[bytes, int] = {}
        self.json_templates: list = []
        self.json_numbers: dict[int, int] = {}  # id of a template -> its number
        self.json_decisions: list[int] = []  # each template's decision, its number in `decided`
        # Each cell's notes as texts, once per distinct tuple: tuple -> id, and by id.
        self.note_tuples: dict[tuple[str, ...], int] = {(): 0}
        self.note_tuple_list: list[tuple[str, ...]] = [()]

    # --- reading ---------------------------------------------------------------------

    def _field(self, key: str, column: pa.Array) -> tuple[np.ndarray, list[FieldReading]]:
        """Per-row global ids of a field column's distinct cells, read once each."""
        seen = self.field_cells[key]
        index = self.plan.fields[key]
        where = self.plan.header[index].strip() or key
        codes, values = _encoded(column)
        gids = np.empty(len(values), dtype=np.int64)
        for position, raw in enumerate(values):
            found = seen.get(_hashable(raw))
            if found is None:
                found = FieldReading(len(seen))
                if not (raw is None or (isinstance(raw, str) and is_missing(raw))):
                    parse = PATIENT_PARSERS[key]
                    try:
                        if key in ("date", "b12_therapy_start"):
                            found.value = parse(raw, where, self.rows.policy.date_order)
                        else:
                            found.value = parse(raw, where)
                    except InputError:
                        found.refused = True
                seen[_hashable(raw)] = found
                self.field_lists[key].append(found)
            gids[position] = found.gid
        return gids[codes], self.field_lists[key]

    def _analyte(
        self, number: int, column: pa.Array, units: pa.Array | None
    ) -> tuple[np.ndarray, list[CellReading]]:
        """Per-row global ids of an analyte column's distinct (cell, unit) pairs."""
        if _strings(column) and (units is None or _strings(units)):
            return self._analyte_strings(number, column, units)
        codes, values = _encoded(column)
        if units is not None:
            unit_codes, unit_values = _encoded(units)
            pairs = codes.astype(np.int64) * (len(unit_values) + 1) + unit_codes
            distinct, inverse = np.unique(pairs, return_inverse=True)
            keys = [
                (values[p // (len(unit_values) + 1)], unit_values[p % (len(unit_values) + 1)])
                for p in distinct.tolist()
            ]
        else:
            inverse = codes
            keys = [(value, None) for value in values]
        gids = np.empty(len(keys), dtype=np.int64)
        for position, (raw, unit_text) in enumerate(keys):
            gids[position] = self._cell(number, raw, unit_text).gid
        return gids[inverse], self.cell_lists[number]

    def _cell(self, number: int, raw: object, unit_text: str | None) -> CellReading:
        """The reading of a cell (with its unit cell) of the `number`th analyte column:
        read through the reading layer the first time it is seen, then remembered."""
        seen = self.cells[number]
        key = (_hashable(raw), unit_text)
        found = seen.get(key)
        if found is None:
            found = self._read_cell(len(seen), self.plan.analytes[number], raw, unit_text)
            seen[key] = found
            self.cell_lists[number].append(found)
        return found

    def _analyte_strings(
        self, number: int, column: pa.Array, units: pa.Array | None
    ) -> tuple[np.ndarray, list[CellReading]]:
        """`_analyte` for text cells (and unit cells): Arrow finds which texts and which
        pairs of texts were seen in earlier blocks, so that only new ones are looked at
        one by one."""
        readings = self.cell_lists[number]
        texts, unit_texts, known = self.cell_texts[number]
        pairs = texts.ids(column) << 32
        if units is not None:
            pairs |= unit_texts.ids(units) + 1  # 0: no unit column
        distinct, inverse = np.unique(pairs, return_inverse=True)
        gids = known.find(distinct)
        new = np.flatnonzero(gids < 0)
        for position in new.tolist():
            pair = int(distinct[position])
            raw = texts.strings[pair >> 32]
            unit_text = unit_texts.strings[(pair & 0xFFFFFFFF) - 1] if units is not None else None
            gids[position] = self._cell(number, raw, unit_text).gid
        known.add(distinct[new], gids[new])
        return gids[inverse.reshape(-1)], readings

    def _read_cell(self, gid: int, column, raw: object, unit_text: object) -> CellReading:
        """One cell exactly as `RowInterpreter._wide_row` reads it."""
        reading = CellReading(gid)
        if is_missing(raw):
            return reading
        hint = self.rows._hint(
            column.name, column.analyte, unit_text, column.header_unit, column.given_unit
        )
        try:
            measurement, notes = measure(
                self.ranges, column.analyte, raw, hint=hint, policy=self.rows.policy
            )
        except InputError:
            reading.refused = True
            return reading
        reading.measurement = measurement
        reading.value = measurement.value
        reading.censored = bool(measurement.censored)
        reading.comparator = measurement.censored or None
        reading.shown = spreadsheet_safe(normalized_cell(measurement.value, measurement.censored))
        reading.notes = tuple(note._replace(subject=column.name) for note in notes)
        reading.text = "; ".join(dict.fromkeys(str(note) for note in reading.notes))
        return reading

    # --- deciding --------------------------------------------------------------------

    def decide(self, table: pa.Table, lines: np.ndarray) -> Decided:
        """Every row of `table` (cells in header order) decided; `lines` their numbers."""
        rows = table.num_rows
        columns = [column.combine_chunks() for column in table.columns]
        if len(self.decisions) >= MAX_DECISIONS:  # memory stays bounded; keys decided again
            self.decisions.clear()
            self.decided = []
            self.numbers.clear()
            self.fragments = {}
            self.counted = ({}, [])
        refused = np.zeros(rows, dtype=bool)
        key_parts: list[tuple[np.ndarray, str]] = []  # (per-row ids, what they are)

        fields: dict[str, tuple[np.ndarray, list[FieldReading]]] = {}
        for key in self.field_cells:
            gids, readings = self._field(key, columns[self.plan.fields[key]])
            fields[key] = (gids, readings)
            refused |= readings.array("refused", _refused_flags)[gids]

        # Limits: sex and age (through the bands they fall in).
        zeros = np.zeros(rows, dtype=np.int64)
        sex_gids = fields["sex"][0] if "sex" in fields else zeros
        age_gids = fields["age"][0] if "age" in fields else zeros
        sexes = [r.value for r in fields["sex"][1]] if "sex" in fields else [None]
        ages = [r.value for r in fields["age"][1]] if "age" in fields else [None]
        pair = sex_gids * (len(ages) + 1) + age_gids
        distinct, first, inverse = np.unique(pair, return_index=True, return_inverse=True)
        group_of = np.empty(len(distinct), dtype=np.int64)
        exact_of = np.empty(len(distinct), dtype=bool)
        for position, row in enumerate(first.tolist()):
            group_of[position], exact_of[position] = self._limits_group(
                sexes[sex_gids[row]], ages[age_gids[row]]
            )
        inverse = inverse.reshape(-1)
        group_ids = group_of[inverse]
        exact_age = exact_of[inverse]
        key_parts.append((group_ids, "limits"))
        sex_code = np.array([{None: 0, "female": 1, "male": 2}.get(s, 3) for s in sexes])
        key_parts.append((sex_code[sex_gids], "sex"))
        key_parts.append((np.where(exact_age, age_gids, -1), "age"))

        values_of: dict[str, tuple[np.ndarray, list[CellReading]]] = {}
        present: dict[str, np.ndarray] = {}
        groups_here = np.unique(group_ids).tolist()
        for number, spec in enumerate(self.plan.analytes):
            unit_column = columns[spec.unit_index] if spec.unit_index is not None else None
            gids, readings = self._analyte(number, columns[spec.index], unit_column)
            values_of[spec.analyte] = (gids, readings)
            refused |= readings.array("refused", _refused_flags)[gids]
            values = readings.array("value", _values)
            where = np.empty(rows, dtype=np.int64)
            for group in groups_here:  # positions among the cut points of the limits in force
                cuts = self.group_limits[group].cut_points(spec.analyte)
                placed = readings.array(("placed", group), _placed(cuts))
                in_group = group_ids == group
                where[in_group] = placed[gids[in_group]]
            key_parts.append((where, spec.analyte))
            present[spec.analyte] = ~np.isnan(values)[gids]

        # Values the report quotes exactly: the inputs of a derived ANC or eGFR.
        absent = np.zeros(rows, dtype=bool)

        def applies(derivation: Derivation) -> np.ndarray:  # Derivation.applies, row by row
            rows_with = ~present.get(derivation.analyte, absent)
            for analyte in derivation.inputs:
                rows_with = rows_with & present.get(analyte, absent)
            return rows_with

        derive_anc = applies(ANC)
        if derive_anc.any():
            if self.rows.policy.strict:
                refused |= derive_anc
            for analyte in ANC.inputs:
                gids = values_of[analyte][0]
                key_parts.append((np.where(derive_anc, gids, -1), f"anc from {analyte}"))
        derive_egfr = applies(EGFR)
        if derive_egfr.any() and egfr_equation(self.ranges) is not None:
            for analyte in EGFR.inputs:
                gids = values_of[analyte][0]
                key_parts.append((np.where(derive_egfr, gids, -1), f"egfr from {analyte}"))
            key_parts.append((np.where(derive_egfr, age_gids, -1), "egfr from age"))
        if "b12_therapy_start" in fields:
            key_parts.extend(self._therapy_parts(fields, group_ids, rows))
        if "date" in fields:  # a panel dated after the evaluation date is warned of
            gids, readings = fields["date"]
            later = readings.array("after today", _dated_after(self.rows.core.today))
            key_parts.append((later[gids], "after today"))

        patient = self._patient_ids(columns, rows)
        json_texts = None
        if self.json:  # rows without a template join `refused`: the row path's records
            template, json_texts = self._json_records(
                lines, key_parts, refused, fields, values_of, group_ids, columns, patient
            )
        else:
            template = self._templates(lines, key_parts, refused, fields, values_of)
        dates = _iso_dates(fields.get("date"), rows)
        noted = self._noted(values_of, rows)
        errors = {}
        for row in np.flatnonzero(refused).tolist():
            errors[row] = self._row_record(table, int(lines[row]), row)
        counts: dict[tuple[str, str], int] = {}
        kept = ~refused
        for gids, readings in values_of.values():
            tally = np.bincount(gids[kept], minlength=len(readings))
            noted_cells = readings.array("noted", _noted_flags)
            for gid in np.flatnonzero(noted_cells & (tally > 0)).tolist():
                for note in readings[gid].notes:
                    key = (note.subject, note.summary)
                    counts[key] = counts.get(key, 0) + int(tally[gid])
        decided_tally = np.bincount(template[kept], minlength=len(self.decided))
        for number in np.flatnonzero(decided_tally).tolist():
            for analyte in self.decided[number].derived:
                key = (analyte, "derived")
                counts[key] = counts.get(key, 0) + int(decided_tally[number])
        return Decided(
            lines=lines,
            patient_id=patient,
            panel_date=dates,
            template=template,
            decisions=self.decided,
            fragments=self.fragments,
            counted=self.counted,
            noted=noted,
            errors=errors,
            note_counts=counts,
            columns=self.rows.columns,
            readings=values_of,
            kept=[columns[k.index] for k in self.rows.columns.kept],
            json=json_texts,
        )

    def _json_records(
        self,
        lines: np.ndarray,
        key_parts: list[tuple[np.ndarray, str]],
        refused: np.ndarray,
        fields: dict,
        values_of: dict,
        group_ids: np.ndarray,
        columns: Sequence[pa.Array],
        patient: pa.Array,
    ) -> tuple[np.ndarray, list[str | None]]:
        """Each row's decision (its number in `decided`) and NDJSON/JSON record: its
        template key's template filled with the row's own cells (`ReportTemplate.render`,
        as the row path fills it): patient id, date, line, --keep cells, measurements and
        reading notes. A row whose key has no template is added to `refused` (its record
        is the row path's); None for those.

        A template key is the decision's key and what texts quote beyond it
        (`ReportTemplates.key`): the exact sex, the exact days on therapy (here: the
        panel date and therapy start themselves) and whether the panel is dated. A
        template holds the decision of its key (from the same engine report), so each
        key is evaluated once, for both.
        """
        from b12lab.render.templates import MAX_TEMPLATES

        rows = len(lines)
        texts: list[str | None] = [None] * rows
        if not rows:
            return np.zeros(0, dtype=np.int64), texts
        templates = self.rows.report_templates()
        parts = list(key_parts)
        if "sex" in fields:
            parts.append((fields["sex"][0], "sex exact"))
        if "date" in fields:
            gids, readings = fields["date"]
            parts.append((readings.array("undated", _undated_flags)[gids], "undated"))
        if "b12_therapy_start" in fields:
            start_gids, starts = fields["b12_therapy_start"]
            date_gids = fields["date"][0] if "date" in fields else np.zeros(rows, np.int64)
            no_start = starts.array("undated", _undated_flags)[start_gids].astype(bool)
            # Each cell's own id, never a number made from how many cells were seen by
            # this block: a key names the same dates in every later block.
            parts.append((np.where(no_start, -1, date_gids), "therapy exact: date"))
            parts.append((np.where(no_start, -1, start_gids), "therapy exact: start"))
        for gids, readings in values_of.values():
            # A laboratory's own flag or range is quoted as given: the row path.
            refused |= readings.array("lab flag", _lab_flags)[gids]
        combined = np.where(refused, -1, _combine(parts, rows))
        distinct, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
        if len(self.json_templates) >= MAX_TEMPLATES or len(self.json_keys) >= MAX_DECISIONS:
            # Memory stays bounded: the keys, their templates and decisions are let go
            # (a later key is built again).
            self.json_keys.clear()
            self.json_templates = []
            self.json_numbers.clear()
            self.json_decisions = []
            self.decided = []
            self.numbers.clear()
            self.counted = ({}, [])
        names = tuple(name for _, name in parts)
        kind = self.key_names.setdefault(names, len(self.key_names))
        matrix = np.stack([np.asarray(part, dtype=np.int64)[first] for part, _ in parts], 1)
        matrix = np.hstack([np.full((len(first), 1), kind, dtype=np.int64), matrix])
        matrix = matrix.astype("<i8")
        numbers = np.full(len(distinct), -1, dtype=np.int64)
        new: list[tuple[int, int, bytes]] = []
        for position, row in enumerate(first.tolist()):
            if distinct[position] == -1:
                continue  # refused
            key = matrix[position].tobytes()
            number = self.json_keys.get(key)
            if number is None:
                new.append((position, row, key))
            else:
                numbers[position] = number
        panels = self._key_panels([row for _, row, _ in new], fields, values_of)
        found = templates.templates_of(panels, self._build)
        for (position, _, key), made in zip(new, found, strict=True):
            number = -1
            if made is not None:
                number = self.json_numbers.get(id(made), -1)
                if number < 0:
                    number = self.json_numbers[id(made)] = len(self.json_templates)
                    self.json_templates.append(made)  # kept, so that its id stays its own
                    decided = self.numbers.get(made.decision)
                    if decided is None:  # a decision no key had yet
                        decided = self.numbers[made.decision] = len(self.decided)
                        self.decided.append(made.decision)
                    self.json_decisions.append(decided)
            self.json_keys[key] = number
            numbers[position] = number
        per_row = numbers[inverse.reshape(-1)]
        refused |= per_row < 0
        decision_of = np.asarray([*self.json_decisions, 0], dtype=np.int64)  # [-1]: refused
        template = decision_of[per_row]

        # Each row's cells, as the row path's panel holds them.
        patients = patient.to_pylist()
        dates = [None] * rows
        if "date" in fields:
            gids, readings = fields["date"]
            dates = [readings[gid].value for gid in gids.tolist()]
        measured = []
        for analyte, (gids, readings) in values_of.items():
            measured.append((analyte, [readings[gid].measurement for gid in gids.tolist()]))
        notes = self._row_notes(values_of, rows)
        kept = None
        if templates.kept:
            cells = [
                [kept_cell(v) for v in columns[k.index].to_pylist()] for k in self.rows.columns.kept
            ]
            kept = [dict(zip(templates.kept, row, strict=True)) for row in zip(*cells, strict=True)]
        made = self.json_templates
        limits = self.group_limits
        groups = group_ids.tolist()
        numbers_of = per_row.tolist()
        line_numbers = lines.tolist()
        quoted, band = templates.quoted, templates.band
        for row in np.flatnonzero(~refused).tolist():
            measurements = {}
            for analyte, cells in measured:
                if cells[row] is not None:
                    measurements[analyte] = cells[row]
            panel = _RowPanel(patients[row] or None, dates[row], measurements, notes[row])
            texts[row] = made[numbers_of[row]].render(
                panel,
                limits[groups[row]],
                (line_numbers[row],),
                None if kept is None else kept[row],
                quoted,
                band,
            )[0]
        return template, texts

    def _row_notes(self, values_of: dict, rows: int) -> list[tuple[str, ...]]:
        """Each row's reading notes as its panel's warnings hold them (in column order,
        each text once). Rows share few combinations of notes: each is made once."""
        texts = self.note_tuples
        by_id = self.note_tuple_list

        def tuple_ids(start: int, cells: list) -> np.ndarray:
            ids = []
            for reading in cells:
                shown = tuple(str(note) for note in reading.notes)
                if shown not in texts:
                    texts[shown] = len(by_id)
                    by_id.append(shown)
                ids.append(texts[shown])
            return np.array(ids, dtype=np.int64)

        parts = []
        for gids, readings in values_of.values():
            ids = readings.array("note tuple", tuple_ids)
            if ids.any():
                parts.append((ids[gids], ""))
        if not parts:
            return [()] * rows
        _, first, inverse = np.unique(_combine(parts, rows), return_index=True, return_inverse=True)
        combined = [
            tuple(dict.fromkeys(text for ids, _ in parts for text in by_id[ids[row]]))
            for row in first.tolist()
        ]
        return [combined[number] for number in inverse.reshape(-1).tolist()]

    def _build(self, panels: list) -> list:
        """Each panel's JSON record template (`ReportTemplates.build`), in order: on both
        cores when there are many."""
        build = self.rows.report_templates().build
        return self._on_cores(panels, build, _build_forked, PARALLEL_TEMPLATES)

    def _therapy_parts(self, fields, group_ids: np.ndarray, rows: int) -> list:
        """Days on therapy placed among the day cut points, as `DecisionCore.key` places
        them; the dates themselves only where the start is after the panel."""
        start_gids, starts = fields["b12_therapy_start"]
        date_gids, dates = fields["date"] if "date" in fields else (np.zeros(rows, np.int64), [])
        pair = date_gids * (len(starts) + 1) + start_gids
        distinct, first, inverse = np.unique(pair, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        days = np.empty(len(distinct), dtype=np.float64)
        for position, row in enumerate(first.tolist()):
            date = dates[date_gids[row]].value if dates else None
            start = starts[start_gids[row]].value
            found = therapy_days(
                Panel(measurements={}, date=date, context=Context(b12_therapy_start=start)),
                self.rows.today,
            )
            days[position] = math.nan if found is None else found
        row_days = days[inverse]
        where = np.full(rows, -1, dtype=np.int64)
        for group in np.unique(group_ids).tolist():
            in_group = group_ids == group
            cuts = self.group_limits[group].cut_points(DAYS)
            where[in_group] = positions(row_days[in_group], cuts)
        # A start after the panel is quoted exactly: the key names both dates' own cells
        # (their ids, which every later block keeps).
        after = row_days < 0
        return [
            (where, DAYS),
            (np.where(after, date_gids, -1), "start after panel: date"),
            (np.where(after, start_gids, -1), "start after panel: start"),
        ]

    def _limits_group(self, sex: object, age: object) -> tuple[int, bool]:
        limits = self.ranges.limits(sex, age, self.rows.guideline, None)  # type: ignore[arg-type]
        found = self.limit_groups.get(limits.key)
        if found is None:
            found = (len(self.limit_groups), bool(limits.unbanded))
            self.limit_groups[limits.key] = found
            self.group_limits.append(limits)
        return found

    def _templates(
        self,
        lines: np.ndarray,
        key_parts: list[tuple[np.ndarray, str]],
        refused: np.ndarray,
        fields: dict,
        values_of: dict,
    ) -> np.ndarray:
        rows = len(lines)
        template = np.zeros(rows, dtype=np.int64)
        if not rows:
            return template
        combined = _combine(key_parts, rows)
        combined = np.where(refused, -1, combined)
        distinct, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
        numbers = np.empty(len(distinct), dtype=np.int64)
        # A key: which parts it has (their kind) and their values, as one bytes object
        # (compact in memory): 32-bit numbers when every value fits, else 64-bit (the
        # kind's lowest bit says which).
        names = tuple(name for _, name in key_parts)
        kind = self.key_names.setdefault(names, len(self.key_names))
        matrix = np.stack([np.asarray(part, dtype=np.int64)[first] for part, _ in key_parts], 1)
        limit = np.iinfo(np.int32)
        wide = int(matrix.max()) > limit.max or int(matrix.min()) < limit.min
        prefix = np.full((len(first), 1), 2 * kind + wide, dtype=np.int64)
        matrix = np.hstack([prefix, matrix]).astype("<i8" if wide else "<i4")
        new: list[tuple[int, int, bytes]] = []  # (position, row, key) of keys not yet decided
        for position, row in enumerate(first.tolist()):
            if distinct[position] == -1 and refused[row]:
                numbers[position] = 0
                continue
            key = matrix[position].tobytes()
            number = self.decisions.get(key)
            if number is None:
                new.append((position, row, key))
            else:
                numbers[position] = number
        # Each new key is decided once, on its first row's panel.
        panels = self._key_panels([row for _, row, _ in new], fields, values_of)
        for (position, _, key), decision in zip(new, self._decide(panels), strict=True):
            number = self.numbers.get(decision)
            if number is None:  # a decision no key had yet
                number = self.numbers[decision] = len(self.decided)
                self.decided.append(decision)
            self.decisions[key] = number
            numbers[position] = number
        return numbers[inverse.reshape(-1)]

    def _key_panels(self, rows: list[int], fields: dict, values_of: dict) -> list[Panel]:
        """The panel the row path builds from each of `rows` (`RowInterpreter._wide_row`),
        as the decision sees it (no warnings, errors or patient id: `decide_once` drops
        them), made of the cells this path already read through the reading layer: its
        fields as parsed and its measurements in the plan's column order."""
        taken = np.asarray(rows, dtype=np.int64)
        field_values = [
            (key, [readings[gid].value for gid in gids[taken].tolist()])
            for key, (gids, readings) in fields.items()
        ]
        measured = []
        for spec in self.plan.analytes:
            gids, readings = values_of[spec.analyte]
            measured.append(
                (spec.analyte, [readings[gid].measurement for gid in gids[taken].tolist()])
            )
        panels = []
        for position in range(len(rows)):
            given = {}
            for key, values in field_values:
                if values[position] is not None:
                    given[key] = values[position]
            measurements = {}
            for analyte, cells in measured:
                if cells[position] is not None:
                    measurements[analyte] = cells[position]
            start = given.get("b12_therapy_start")
            panels.append(
                Panel(
                    measurements=measurements,
                    date=given.get("date"),
                    sex=given.get("sex"),
                    age=given.get("age"),
                    context=Context() if start is None else Context(b12_therapy_start=start),
                )
            )
        return panels

    def _decide(self, panels: list) -> list[Decision]:
        """Each panel's decision, in order: on both cores when there are many (the other
        share is decided by forked copies of this process, which hold the same ranges,
        rules and options)."""
        return self._on_cores(panels, self.rows.core.decide_once, _decide_forked, PARALLEL_KEYS)

    def _on_cores(self, panels: list, here, forked, least: int) -> list:
        """`here(panel)` for each panel, in order. From `least` panels on, the first share
        is done here and the others by the forked copies of this process (`forked` over
        a share), one share per core."""
        if self.workers < 2 or len(panels) < least or self._forked() is None:
            return [here(panel) for panel in panels]
        share = -(-len(panels) // self.workers)
        others = [
            self.pool.apply_async(forked, (panels[start : start + share],))
            for start in range(share, len(panels), share)
        ]
        done = [here(panel) for panel in panels[:share]]
        for other in others:
            done.extend(other.get())
        return done

    def _forked(self):
        """The pool of forked deciders (None where a process cannot be forked: then this
        process decides alone)."""
        if self.pool is None:
            global _FORKED_CORE, _FORKED_TEMPLATES
            _FORKED_CORE = self.rows.core
            _FORKED_TEMPLATES = self.rows.report_templates() if self.json else None
            self.pool = forked_pool(self.workers - 1)
            if self.pool is None:
                self.workers = 1
        return self.pool

    def decide_alone(self) -> None:
        """Stop the forked deciders, if any, and decide in this process from now on."""
        self.close()
        self.workers = 1

    def close(self) -> None:
        """Stop the forked deciders, if any."""
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None

    def _row_record(self, table: pa.Table, line: int, row: int) -> BatchRecord:
        cells = next(_rows_cells(table, [row]))
        return self.rows._finish(self.rows._wide_row(line, cells, None))

    def _patient_ids(self, columns: Sequence[pa.Array], rows: int) -> pa.Array:
        index = self.plan.fields.get("patient_id")
        if index is None:
            return pa.array([""] * rows, pa.string())
        column = columns[index]
        if pa.types.is_string(column.type) and pc.all(pc.string_is_ascii(column)).as_py() in (
            True,
            None,
        ):
            trimmed = pc.utf8_trim(column, PY_ASCII_SPACE)
            missing = pc.is_in(pc.utf8_lower(trimmed), value_set=pa.array(sorted(MISSING_TOKENS)))
            return pc.fill_null(pc.if_else(missing, "", trimmed), "")
        codes, values = _encoded(column)
        shown = []
        for raw in values:
            if raw is None or is_missing(raw):
                shown.append("")
            else:
                text = raw.strip() if isinstance(raw, str) else cell_text(raw, "patient_id").strip()
                shown.append(text)
        return pa.array(shown, pa.string()).take(pa.array(codes))

    def _noted(self, values_of, rows: int) -> pa.Array:
        """Each row's reading notes, in column order, joined with "; " ("" when none).

        Rows share few combinations of notes: each is joined once, then taken per row.
        """
        texts = self.note_texts
        parts: list[tuple[np.ndarray, str]] = []

        def text_ids(start: int, cells: list) -> np.ndarray:
            return np.array([texts.setdefault(r.text, len(texts)) for r in cells], np.int64)

        for analyte, (gids, readings) in values_of.items():
            ids = readings.array("note text", text_ids)
            if ids.any():
                parts.append((ids[gids], analyte))
        if not parts:
            return pa.array([""] * rows, pa.string())
        _, first, inverse = np.unique(_combine(parts, rows), return_index=True, return_inverse=True)
        by_id = list(texts)
        joined = [
            "; ".join(by_id[ids[row]] for ids, _ in parts if ids[row]) for row in first.tolist()
        ]
        return pa.array(joined, pa.string()).take(pa.array(inverse.reshape(-1)))


# Below this many new keys in a block, one process decides them (forking and sending
# the panels costs more than it saves).
PARALLEL_KEYS = 256
_FORKED_CORE = None  # the decision core a forked decider inherits
_FORKED_TEMPLATES = None  # and the JSON record templates, when the output is JSON
# Below this many new JSON record templates in a block, one process builds them.
PARALLEL_TEMPLATES = 64


_STOPPING = {getattr(signal, n) for n in ("SIGTERM", "SIGHUP", "SIGINT") if hasattr(signal, n)}


def forked_pool(processes: int):
    """A pool of `processes` forked copies of this process, which hold what it holds
    (ranges, rules, options, what it has decided); None where a process cannot be
    forked here."""
    import multiprocessing

    if (
        "fork" not in multiprocessing.get_all_start_methods()
        or multiprocessing.current_process().daemon
    ):
        return None
    # A terminating signal waits while the copies are forked: each of them first drops
    # the run's own handlers (`_forked_start`), so that stopping the pool (SIGTERM)
    # ends every one of them, however far it has started.
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPPING)
    try:
        return multiprocessing.get_context("fork").Pool(
            processes, initializer=_forked_start, initargs=(held,)
        )
    except OSError:
        return None
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _forked_start(held) -> None:
    """A forked copy: SIGTERM and SIGHUP end it at once, SIGINT (a terminal's Ctrl-C,
    which its parent gets too) is left to the parent, which stops the pool."""
    for number in _STOPPING:
        signal.signal(number, signal.SIG_IGN if number == signal.SIGINT else signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _decide_forked(panels: list) -> list[Decision]:
    return [_FORKED_CORE.decide_once(panel) for panel in panels]


def _build_forked(panels: list) -> list:
    return [_FORKED_TEMPLATES.build(panel) for panel in panels]


def release_unused() -> None:
    """Give the memory Arrow freed back to the system (its allocator keeps it otherwise)."""
    pa.default_memory_pool().release_unused()


def _joined(first: pa.Array, second: pa.Array) -> pa.Array:
    """Two columns of optional texts joined with "; " (a null is no text)."""
    both = pc.binary_join_element_wise(pc.fill_null(first, ""), pc.fill_null(second, ""), "; ")
    return pc.if_else(pc.is_null(first), second, pc.if_else(pc.is_null(second), first, both))


def _combine(parts: list[tuple[np.ndarray, str]], rows: int) -> np.ndarray:
    """One int64 per row, equal exactly when every part is equal (mixed radix,
    re-coded densely whenever the product would overflow)."""
    combined = np.zeros(rows, dtype=np.int64)
    size = 1
    for values, _ in parts:
        values = np.asarray(values, dtype=np.int64) + 1  # -1 (none) becomes 0
        cardinality = int(values.max(initial=0)) + 1
        if size * cardinality >= 1 << 62:
            _, combined = np.unique(combined, return_inverse=True)
            combined = combined.reshape(-1).astype(np.int64)
            size = int(combined.max(initial=0)) + 1
        combined = combined * cardinality + values
        size *= cardinality
    return combined


def _strings(column) -> bool:
    """Text cells without nulls (a CSV export's, as Arrow reads them)."""
    return pa.types.is_string(column.type) and not column.null_count


class _RowPanel:
    """What a JSON record's template reads of a row's panel (`ReportTemplate.render`)."""

    __slots__ = ("date", "errors", "measurements", "patient_id", "warnings")

    def __init__(self, patient_id, date, measurements, warnings):
        self.patient_id = patient_id
        self.date = date
        self.measurements = measurements
        self.warnings = warnings
        self.errors = ()


def _dated_after(today):
    """Field cells holding a date after `today` (the evaluation date)."""

    def make(start: int, cells: list) -> np.ndarray:
        return np.array([r.value is not None and r.value > today for r in cells], dtype=np.int64)

    return make


def _undated_flags(start: int, cells: list) -> np.ndarray:
    """Field cells without a value (none given, or refused)."""
    return np.array([r.value is None for r in cells], dtype=np.int64)


def _lab_flags(start: int, cells: list) -> np.ndarray:
    """Cells read with a laboratory's own flag or reference range."""
    return np.array(
        [
            r.measurement is not None
            and bool(r.measurement.lab_flag or r.measurement.lab_reference)
            for r in cells
        ],
        dtype=bool,
    )


def _refused_flags(start: int, cells: list) -> np.ndarray:
    return np.array([r.refused for r in cells], dtype=bool)


def _values(start: int, cells: list) -> np.ndarray:
    return np.array([r.value for r in cells], dtype=np.float64)


def _noted_flags(start: int, cells: list) -> np.ndarray:
    return np.array([bool(r.notes) for r in cells], dtype=bool)


def _placed(cuts):
    """Each cell's position among `cuts`; a censored cell keys by its own identity."""

    def make(start: int, cells: list) -> np.ndarray:
        placed = positions(_values(start, cells), cuts)
        censored = np.array([r.censored for r in cells], dtype=bool)
        placed[censored] = CENSORED_BASE + start + np.flatnonzero(censored)
        return placed

    return make


def _shown_cells(quoted: bool):
    """Each cell's normalized-value text (`CellReading.shown`), quoted for CSV or not."""

    def make(start: int, cells: list) -> pa.Array:
        shown = pa.array([r.shown for r in cells], pa.string())
        return _csv_cells(shown) if quoted else shown

    return make


def _encoded(column) -> tuple[np.ndarray, list]:
    """Dictionary codes per row (nulls -> an entry None) and the distinct Python values."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = pc.dictionary_encode(column, null_encoding="encode")
    values = encoded.dictionary.to_pylist()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, values


def _hashable(raw: object) -> object:
    return raw if raw is None or isinstance(raw, (str, int, float)) else repr(raw)


def _iso_dates(found, rows: int) -> pa.Array:
    if found is None:
        return pa.array([""] * rows, pa.string())
    gids, readings = found
    shown = [r.value.isoformat() if r.value is not None else "" for r in readings]
    return pa.array(shown, pa.string()).take(pa.array(gids))


def _rows_cells(table: pa.Table, rows: list[int], chunk: int = 512) -> Iterator[list]:
    """The Python cells of each of `rows`, taken `chunk` rows at a time."""
    for start in range(0, len(rows), chunk):
        taken = table.take(pa.array(rows[start : start + chunk], pa.int64()))
        for cells in zip(*(c.to_pylist() for c in taken.columns), strict=True):
            yield list(cells)


# --- CSV output ------------------------------------------------------------------------

_NEEDS_QUOTES = '[,"\\n]'  # what makes Python's csv writer (QUOTE_MINIMAL, "\n") quote


def _csv_cells(array: pa.Array) -> pa.Array:
    """Cells as the csv module writes them: quoted, quotes doubled, only where needed."""
    if not _has_bytes(array, b',"\n'):
        return array
    needed = pc.match_substring_regex(array, _NEEDS_QUOTES)
    if not pc.any(needed).as_py():
        return array
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(array, '"', '""'), '"', "")
    return pc.if_else(needed, quoted, array)


def _has_bytes(array: pa.Array, wanted: bytes) -> bool:
    """Whether any cell of a string array holds any of the (ASCII) bytes `wanted`."""
    offsets = _offsets(array)
    buffer = array.buffers()[2]
    if buffer is None or offsets[-1] == offsets[0]:
        return False
    data = bytes(memoryview(buffer)[offsets[0] : offsets[-1]])  # searched at memchr speed
    return any(data.find(byte) >= 0 for byte in wanted)


def _safe(array: pa.Array) -> pa.Array:
    """`spreadsheet_safe` for every cell; only cells not starting with a letter or digit
    can need it, and only those are looked at one by one."""
    from b12lab.render.rows import spreadsheet_safe

    plain = pc.match_substring_regex(array, "^[A-Za-z0-9]")
    empty = pc.equal(pc.utf8_length(array), 0)
    check = pc.invert(pc.or_(plain, empty))
    rows = np.flatnonzero(check.to_numpy(zero_copy_only=False))
    if not len(rows):
        return array
    values = array.to_pylist()
    for row in rows.tolist():
        values[row] = spreadsheet_safe(values[row])
    return pa.array(values, pa.string())


def decision_cells(decision: Decision) -> list[str]:
    """A decision's cells in CSV_COLUMNS order from b12_status to missing, then its own
    warnings, the guideline and the provenance."""
    return outcome_cells(
        decision.outcome, decision.warnings, decision.guideline, decision.provenance
    )


def csv_bytes(decided: Decided) -> bytes | memoryview:
    """The rows of a decided batch as CSV text encoded in UTF-8, byte for byte what
    `csv_row` writes (Arrow's own bytes where no row's record is the row path's)."""
    from b12lab.render.rows import csv_row

    rows = len(decided.lines)
    if not rows:
        return b""
    used, local = np.unique(decided.template, return_inverse=True)  # decisions of this batch
    used = used.tolist()
    fragments = _fragments(decided, used)
    template = pa.array(local.reshape(-1))
    before, own_warnings, after = (
        pa.array([fragments[n][part] for n in used], pa.string()).take(template)
        for part in range(3)
    )
    noted = decided.noted
    warnings = _joined(
        pc.if_else(pc.equal(noted, ""), pa.scalar(None, pa.string()), noted),
        pc.if_else(pc.equal(own_warnings, ""), pa.scalar(None, pa.string()), own_warnings),
    )
    warnings = _csv_cells(_safe(pc.fill_null(warnings, "")))
    columns = [
        pa.array(decided.lines).cast(pa.string()),
        _csv_cells(_safe(decided.patient_id)),
        _csv_cells(decided.panel_date),
        before,
        warnings,
        after,
        *_value_columns(decided, rows),
        *(_csv_cells(_kept_column(c)) for c in decided.kept),
        # The last column (errors) is empty here: its cell and the line's end in one.
        pa.repeat(pa.scalar("\n", pa.string()), rows),
    ]
    joined = pc.binary_join_element_wise(*columns, ",")
    text = _string_view(joined)
    if not decided.errors:
        return text
    offsets = _offsets(joined)
    pieces, start = [], 0
    for row in sorted(decided.errors):
        pieces.append(text[start : offsets[row] - offsets[0]])
        pieces.append(_csv_line(csv_row(decided.errors[row], decided.columns)))
        start = offsets[row + 1] - offsets[0]
    pieces.append(text[start:])
    return b"".join(pieces)


def decided_cells(decided: Decided) -> list[pa.Array]:
    """The cells of a decided batch, one string array per column of the batch CSV, as
    `csv_row` gives each record's (spreadsheet-safe, not quoted): the table API's
    outcomes, with no CSV text in between. `csv_bytes` writes the same cells as CSV."""
    from b12lab.render.rows import csv_row, spreadsheet_safe

    rows = len(decided.lines)
    used, local = np.unique(decided.template, return_inverse=True)
    template = pa.array(local.reshape(-1))
    raw = [
        decision_cells(decided.decisions[n]) if n < len(decided.decisions) else [""] * 13
        for n in used.tolist()
    ]  # a refused row has no decision: its record replaces the row below
    safe: dict[str, str] = {}  # decisions share most cells: each made safe once
    shared = [
        pa.array(
            [safe[c] if c in safe else safe.setdefault(c, spreadsheet_safe(c)) for c in column],
            pa.string(),
        ).take(template)
        for column in zip(*raw, strict=True)
    ]
    own_warnings = pa.array([cells[10] for cells in raw], pa.string()).take(template)
    noted = decided.noted
    warnings = _joined(
        pc.if_else(pc.equal(noted, ""), pa.scalar(None, pa.string()), noted),
        pc.if_else(pc.equal(own_warnings, ""), pa.scalar(None, pa.string()), own_warnings),
    )
    columns = [
        pa.array(decided.lines).cast(pa.string()),
        _safe(decided.patient_id),
        decided.panel_date,
        *shared[:10],
        _safe(pc.fill_null(warnings, "")),
        *shared[11:],
        *_value_cells(decided, rows),
        *(_kept_column(c) for c in decided.kept),
        pa.array([""] * rows, pa.string()),
    ]
    if not decided.errors:
        return columns
    by_row = [column.to_pylist() for column in columns]
    for row, record in decided.errors.items():
        for column, cell in zip(by_row, csv_row(record, decided.columns), strict=True):
            column[row] = cell
    return [pa.array(column, pa.string()) for column in by_row]


def _value_cells(decided: Decided, rows: int, quoted: bool = False) -> list[pa.Array]:
    """The normalized-value columns' cells, spreadsheet-safe (and `quoted` for CSV: each
    distinct reading's cell once), per row."""
    columns = []
    for analyte in decided.columns.values:
        found = decided.readings.get(analyte)
        if found is None:
            columns.append(pa.array([""] * rows, pa.string()))
            continue
        gids, readings = found
        cells = readings.array(("shown", quoted), _shown_cells(quoted))
        columns.append(cells.take(pa.array(gids)))
    return columns


EMPTY_FRAGMENTS = (",".join([""] * 10), "", ",")  # a row without a decision (refused)


def _fragments(decided: Decided, used: list[int]) -> dict[int, tuple[str, str, str]]:
    """Each used decision's CSV cells, once per decision: the columns before `warnings`
    (safe, quoted and joined), its own warnings (joined with the row's notes later), and
    the columns after."""
    from b12lab.render.rows import spreadsheet_safe

    fragments, decisions = decided.fragments, decided.decisions
    new = [n for n in used if n < len(decisions) and n not in fragments]
    if new:
        by_column = list(zip(*(decision_cells(decisions[n]) for n in new), strict=True))
        safe: dict[str, str] = {}  # decisions share most cells: each text made safe once
        cells = [
            _csv_cells(
                pa.array(
                    [
                        safe[c] if c in safe else safe.setdefault(c, spreadsheet_safe(c))
                        for c in column
                    ],
                    pa.string(),
                )
            )
            for column in by_column
        ]
        before = pc.binary_join_element_wise(*cells[:10], ",").to_pylist()
        after = pc.binary_join_element_wise(*cells[11:], ",").to_pylist()
        for n, first, own, last in zip(new, before, by_column[10], after, strict=True):
            fragments[n] = (first, sys.intern(own), sys.intern(last))  # most share these
    return {n: fragments.get(n, EMPTY_FRAGMENTS) for n in used}


def _value_columns(decided: Decided, rows: int) -> list[pa.Array]:
    """The normalized-value columns as CSV cells: each distinct reading's cell, formatted
    once when read (`CellReading.shown`), made spreadsheet-safe and quoted once each,
    taken per row."""
    return _value_cells(decided, rows, quoted=True)


def _kept_column(column: pa.Array) -> pa.Array:
    """A --keep column as `kept_cell` gives each cell, spreadsheet-safe."""
    if not pa.types.is_string(column.type) or column.null_count:
        column = pa.array([kept_cell(v) for v in column.to_pylist()], pa.string())
    return _safe(column)


def _csv_line(cells: list[str]) -> bytes:
    import csv
    import io

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue().encode("utf-8")


def _offsets(array: pa.Array) -> np.ndarray:
    kind = np.int64 if pa.types.is_large_string(array.type) else np.int32
    offsets = np.frombuffer(array.buffers()[1], dtype=kind)
    return offsets[array.offset : array.offset + len(array) + 1].astype(np.int64)


def _string_view(array: pa.Array) -> memoryview:
    """The bytes of a string array's values, end to end, without copying them."""
    offsets = _offsets(array)
    data = array.buffers()[2]
    return memoryview(data)[offsets[0] : offsets[-1]] if data is not None else memoryview(b"")


# --- reading a CSV export in blocks ------------------------------------------------------

BLOCK = 1 << 20  # bytes per block (a block's Arrow and numpy work stays a few MiB)


def _simple(block: bytes, delimiter: bytes, width: int) -> bool:
    """A block Arrow reads exactly as the row reader does: UTF-8, no quotes, NUL or lone
    CR, no blank line, every line with the header's number of fields, none over-long."""
    from b12lab.inputs.export import MAX_LINE

    if not block.endswith(b"\n") or b'"' in block or b"\x00" in block:
        return False
    if block.startswith(b"\xef\xbb\xbf"):  # Arrow would drop a byte-order mark here
        return False
    if b"\r" in block and block.count(b"\r") != block.count(b"\r\n"):
        return False
    if block.startswith((b"\n", b"\r\n")) or b"\n\n" in block or b"\n\r\n" in block:
        return False
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return False
    data = np.frombuffer(block, dtype=np.uint8)
    # Separators and line ends in order: every line has width - 1 separators exactly
    # when they come in groups of `width`, each ended by the only line ends there are.
    marks = np.flatnonzero((data == delimiter[0]) | (data == 10))
    if len(marks) % width:
        return False
    line_end = data[marks] == 10
    ends = marks[width - 1 :: width]
    if not line_end[width - 1 :: width].all() or int(np.count_nonzero(line_end)) != len(ends):
        return False
    lengths = np.diff(ends, prepend=-1) - 1
    return int(lengths.max(initial=0)) < MAX_LINE


def _arrow_block(block: bytes, delimiter: str, width: int) -> pa.Table:
    import pyarrow.csv as pacsv

    names = [f"c{i}" for i in range(width)]
    return pacsv.read_csv(
        pa.py_buffer(block),
        read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 24),
        parse_options=pacsv.ParseOptions(
            delimiter=delimiter,
            quote_char=False,
            double_quote=False,
            escape_char=False,
            newlines_in_values=False,
            ignore_empty_lines=False,
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            null_values=[],
        ),
    )


def _blank_rows(table: pa.Table) -> np.ndarray:
    """Rows every cell of which is blank (the row reader skips them)."""
    blank = np.ones(table.num_rows, dtype=bool)
    for column in table.columns:
        column = column.combine_chunks()
        if (
            pa.types.is_string(column.type)
            and not column.null_count
            and pc.all(pc.string_is_ascii(column)).as_py() in (True, None)
        ):
            # ASCII only: Arrow trims exactly the characters str.strip() removes.
            length = pc.utf8_length(pc.utf8_trim(column, PY_ASCII_SPACE))
            blank &= _flags(pc.equal(length, 0))
        else:
            codes, values = _encoded(column)
            empty = np.array([v is None or not v.strip() for v in values], dtype=bool)
            blank &= empty[codes]
        if not blank.any():
            break
    return blank


def _flags(flags: pa.Array) -> np.ndarray:
    """A boolean Arrow array without nulls as a numpy bool array."""
    as_bytes = pc.cast(flags, pa.uint8())
    data = np.frombuffer(as_bytes.buffers()[1], dtype=np.uint8)
    return data[as_bytes.offset : as_bytes.offset + len(as_bytes)].astype(bool)


class _Held:
    """Bytes read from the export and not yet handed on."""

    def __init__(self, stream, stats):
        self.stream = stream
        self.stats = stats
        self.data = bytearray()
        self.eof = False

    def fill(self, size: int) -> None:
        while not self.eof and len(self.data) < size:
            more = self.stream.read(max(size - len(self.data), 1 << 16))
            if not more:
                self.eof = True
            else:
                self.data += more

    def take(self, size: int) -> bytes | None:
        """The next whole lines (about `size` bytes); None at the end; b"" for a line too
        long to hold."""
        from b12lab.inputs.export import MAX_LINE

        self.fill(size)
        if not self.data:
            return None
        cut = self.data.rfind(b"\n", 0, size)
        if cut < 0:
            self.fill(MAX_LINE + 2)
            cut = self.data.find(b"\n", 0, MAX_LINE + 2)
            if cut < 0:
                if not self.eof:
                    return b""
                cut = len(self.data) - 1
        block = bytes(self.data[: cut + 1])
        del self.data[: cut + 1]
        self.stats.bytes_read += len(block)
        return block


def block_table(block: bytes, delimiter: str, width: int, line: int) -> tuple[pa.Table, np.ndarray]:
    """A block `wide_segments` gives, as the table of its cells and each row's line
    number (the first after `line`), its blank lines left out as the row reader does."""
    table = _arrow_block(block, delimiter, width)
    lines = np.arange(line + 1, line + 1 + table.num_rows, dtype=np.int64)
    blank = _blank_rows(table)
    if blank.any():
        keep = np.flatnonzero(~blank)
        table, lines = table.take(pa.array(keep)), lines[keep]
    return table, lines


def wide_segments(stream, header, interpreter: RowInterpreter, stats):
    """The export after its header as ("block", bytes, line) for the columnar path (whole
    lines, one record each, the first after line number `line`: `block_table` reads them)
    and ("row", Record) for lines only the row reader reads exactly, in order."""
    from b12lab.batch.rows import AUTO, DECIMAL_SAMPLE
    from b12lab.inputs.export import MAX_LINE, ReadStats, decode_line, records

    delimiter, width, line = header.delimiter, len(header.cells), header.lines
    held = _Held(stream, stats)
    auto = interpreter.policy.decimal == AUTO
    # The sample decides the decimal mark (when not given) and checks bare numbers.
    sample: list = []
    scratch = ReadStats()
    overlong = False

    def sample_lines():
        nonlocal overlong
        position = 0
        while True:
            end = held.data.find(b"\n", position)
            if (end if end >= 0 else len(held.data)) - position > MAX_LINE:
                overlong = True  # the row reader skips it and samples on: so must we
                return
            if end < 0:
                if held.eof:
                    if position < len(held.data):
                        yield from decode_line(bytes(held.data[position:]), scratch)
                    return
                held.fill(len(held.data) + BLOCK)
                continue
            yield from decode_line(bytes(held.data[position : end + 1]), scratch)
            position = end + 1

    for record in records(sample_lines(), delimiter, line):
        sample.append((record.line, record.cells, record.problem))
        if len(sample) >= DECIMAL_SAMPLE:
            break
    if overlong:
        # A line too long to hold comes before the sample is complete: the row
        # reader reads the whole export and finds the decimal mark as it does.
        rows = _rest_by_rows(held, delimiter, line, stats)
        first = list(itertools.islice(rows, DECIMAL_SAMPLE))
        sample = [(r.line, r.cells, r.problem) for _, r in first]
        if auto:
            interpreter.policy = replace(
                interpreter.policy, decimal=interpreter._decimal_mark(sample)
            )
        interpreter._check_bare_columns(sample)
        yield from first
        yield from rows
        return
    if auto:
        interpreter.policy = replace(interpreter.policy, decimal=interpreter._decimal_mark(sample))
    interpreter._check_bare_columns(sample)
    while True:
        block = held.take(BLOCK)
        if block is None:
            return
        if block == b"":  # a line longer than the bound: the row reader takes the rest
            yield from _rest_by_rows(held, delimiter, line, stats)
            return
        if _simple(block, delimiter.encode(), width):
            yield ("block", block, line)  # its lines are its records (`block_table`)
            line += block.count(b"\n")
            continue
        # The row reader, from this block on, until a record ends where a block does.
        raw_lines: list[bytes] = _raw_lines(block)
        texts: list[str] = []
        counted = 0
        boundary = [False]  # the row reader ended a record and read nothing since

        def feed(raw_lines=raw_lines, texts=texts, boundary=boundary):
            nonlocal counted
            while True:
                if not texts:
                    if not raw_lines:
                        if boundary[0]:
                            return  # a record ended where a block does
                        more = held.take(BLOCK)
                        if not more:  # the end, or an over-long line for the row reader
                            if more == b"":
                                raw_lines.append(b"")
                            return
                        raw_lines.extend(_raw_lines(more))
                    texts.extend(_decoded(raw_lines.pop(0), stats))
                    continue
                counted += 1
                boundary[0] = False
                yield texts.pop(0)

        for record in records(feed(), delimiter, line):
            yield ("row", record)
            boundary[0] = not raw_lines and not texts
        line += counted
        if raw_lines == [b""]:
            yield from _rest_by_rows(held, delimiter, line, stats)
            return


def _raw_lines(block: bytes) -> list[bytes]:
    """The lines of a block, each with its "\\n" (only "\\n" ends a byte line)."""
    pieces = block.split(b"\n")
    lines = [piece + b"\n" for piece in pieces[:-1]]
    if pieces[-1]:
        lines.append(pieces[-1])
    return lines


def _decoded(raw: bytes, stats) -> list[str]:
    """A byte line as the row reader's line source gives it (an over-long one marked)."""
    from b12lab.inputs.export import MAX_LINE, OverlongLine, decode_line

    if len(raw.rstrip(b"\n")) > MAX_LINE:
        return [OverlongLine("")]
    return list(decode_line(raw, stats))


def _rest_by_rows(held: _Held, delimiter: str, line: int, stats):
    """Everything still unread, through the row reader's own line handling."""
    import io

    from b12lab.inputs.export import records, text_lines

    class _Chained(io.RawIOBase):
        def __init__(self):
            self.head = bytes(held.data)
            held.data.clear()

        def readable(self):
            return True

        def readinto(self, buffer):
            if self.head:
                size = min(len(buffer), len(self.head))
                buffer[:size] = self.head[:size]
                self.head = self.head[size:]
                return size
            more = held.stream.read(len(buffer))
            buffer[: len(more)] = more
            return len(more)

    rest = io.BufferedReader(_Chained())
    lines = text_lines(rest, stats)
    for record in records(lines, delimiter, line):
        yield ("row", record)
