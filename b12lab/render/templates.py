"""NDJSON and JSON batch records from one full report per key, filled with each row's values.

A batch record in JSON is the panel's full report, and its texts quote the
panel's own values ("B12 148 pmol/L"), so a report cannot be reused for
another panel as it stands. What it says beyond those quotes is decided by
what decides the panel (`DecisionCore.key`, b12lab.decision). So, once per
distinct key (with the exact days on therapy and whether the panel is dated,
which texts also quote), the engine evaluates a *probe* of one panel of that
key, whose quoting returns a named token instead of the value:

- each value the key holds only by its position among the cut points
  (`Measurement.shown()`, its `input`), and in the record its `value` and
  the reference limits rounded to its decimals;
- the panel date (a date whose `isoformat()` is the token), the patient id;
- the reading layer's warnings and errors, the record's lines and --keep cells.

The probe's record, written as JSON text, is split at the tokens into literal
text and named slots: a `ReportTemplate`. Each panel of the key is then the
template filled with its own values, written exactly as `json.dumps` writes
its report. The inputs of a derived ANC or eGFR, which the key holds
exactly (a derived value's own input quotes them as read), stay literal. A
text that quoted a value other than through a slot would keep the probe
panel's number: tests/test_templates.py renders panels through a template
built from another panel of the same key and compares each with its own full
report, byte for byte.

Templates serve b12lab's own rules; with a laboratory's rules file (whose
texts may quote any fact) every record is its own full report.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring

from b12lab.decision import Decision, DecisionCore
from b12lab.derived import ANC, EGFR, egfr_equation
from b12lab.engine import shown_against
from b12lab.model import Measurement, Panel, evolve, rounded_number
from b12lab.outcomes import Outcome
from b12lab.rules.base import therapy_days

__all__ = ["ReportTemplate", "ReportTemplates", "json_value", "token"]

# Private-use characters: a key whose literal texts hold them gets no template.
OPEN, CLOSE = "\ue000", "\ue001"
_TOKENS = re.compile(f"{OPEN}([^{CLOSE}]*){CLOSE}")

PATIENT = "patient_id"
DATE = "panel_date"
WARNINGS = "warnings"
ERRORS = "errors"
LINES = "lines"
KEPT = "kept"
# Templates kept (each a few KiB of text) and distinct values' slots (a few hundred
# bytes each); beyond, start again.
MAX_TEMPLATES = 10_000
MAX_QUOTED = 50_000
_ONE = Panel(measurements={})  # a panel of one value, for `shown_against`
# What a slot of a positioned value holds: its text, its input, its value and limits.
SHOWN, INPUT, VALUE, LOW, HIGH = "shown", "input", "value", "low", "high"
# A record's slot values, filled into one list in this order: the record's own, then
# each positioned value's (`ReportTemplates.quoted`), five per value.
RECORD_SLOTS = (PATIENT, DATE, LINES, ERRORS, KEPT, WARNINGS)
VALUE_SLOTS = (SHOWN, INPUT, VALUE, LOW, HIGH)


def token(name: str) -> str:
    """The text a probe quotes in place of the value `name`."""
    return f"{OPEN}{name}{CLOSE}"


def json_value(value: object) -> str:
    """`value` as `json.dumps(..., ensure_ascii=False)` writes it."""
    kind = type(value)
    if kind is str:
        return encode_basestring(value)
    if value is None:
        return "null"
    if kind is int:
        return int.__repr__(value)
    if kind is float and value - value == 0:  # finite: json writes repr
        return float.__repr__(value)
    if kind is list and all(type(item) in (str, int) for item in value):
        return "[" + ", ".join(map(json_value, value)) + "]"
    if kind is dict and all(type(k) is str and type(v) is str for k, v in value.items()):
        pairs = (f"{encode_basestring(k)}: {encode_basestring(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    return json.dumps(value, ensure_ascii=False)


class _QuotedMeasurement(Measurement):
    """A probe's measurement: the engine judges its value, its texts quote a token."""

    def shown(self) -> str:
        return token(f"{SHOWN}:{self.analyte}")


class _QuotedDate(dt.date):
    """A probe's panel date: compared and counted as itself, quoted as a token.

    Dates computed from it (a therapy start worked back from days on therapy)
    are not the panel date and print as themselves.
    """

    def isoformat(self) -> str:  # str() and f-strings call this too
        return self.__dict__.get("token") or super().isoformat()


@dataclass(frozen=True)
class _Pieces:
    """Literal text between named slots: literal, slot, literal, ..., literal."""

    literals: tuple[str, ...]
    slots: tuple[tuple[str, bool], ...]  # name, and whether it is a whole JSON value
    # Each slot's name and which of `encoded`'s texts fills it (1 whole, 2 inside a string).
    picks: tuple[tuple[str, int], ...] = ()

    @classmethod
    def of(cls, text: str) -> _Pieces:
        split = _TOKENS.split(text)  # literal, name, literal, name, ..., literal
        literals, names = split[::2], split[1::2]
        slots = []
        for index, name in enumerate(names):
            before, after = literals[index], literals[index + 1]
            # A whole JSON string is the token between its own quotes (not an escaped one).
            whole = before[-1:] == '"' and before[-2:] != '\\"' and after[:1] == '"'
            if whole:
                literals[index], literals[index + 1] = before[:-1], after[1:]
            slots.append((name, whole))
        picks = tuple((name, 1 if whole else 2) for name, whole in slots)
        return cls(tuple(literals), tuple(slots), picks)

    def placed(self, places: dict[str, int]) -> tuple[tuple[int, int], ...]:
        """Each slot's place among a record's slot values, and which of `encoded`'s
        texts fills it."""
        return tuple((places[name], index) for name, index in self.picks)

    def fill(self, values: list, placed: tuple[tuple[int, int], ...]) -> str:
        """JSON text with its slots filled (`values`: each slot's `encoded(value)`, at
        its place)."""
        parts = [""] * (2 * len(placed) + 1)
        parts[::2] = self.literals
        parts[1::2] = [values[place][index] for place, index in placed]
        return "".join(parts)

    def text(self, values: list, placed: tuple[tuple[int, int], ...]) -> str:
        """A plain text (not JSON) with its slots filled."""
        literals = self.literals
        parts = [literals[0]]
        for index, (place, _) in enumerate(placed, start=1):
            parts.append(str(values[place][0]))
            parts.append(literals[index])
        return "".join(parts)


def encoded(value: object) -> tuple[object, str, str]:
    """A slot's value: itself, as a whole JSON value, and quoted inside a JSON string."""
    return value, json_value(value), encode_basestring(str(value))[1:-1]


def _listed(value: list) -> tuple[object, str, str]:
    return value, json_value(value), ""  # a list fills a whole value only


_NONE = ([], "[]", "")  # an empty list's slot (no errors, no warnings)


def _lines(lines: Sequence[int]) -> tuple[object, str, str]:
    """The record's line numbers' slot (ints, as json writes them)."""
    if all(type(line) is int for line in lines):
        return list(lines), "[" + ", ".join(map(int.__repr__, lines)) + "]", ""
    return _listed(list(lines))


@dataclass(frozen=True)
class ReportTemplate:
    """One key's record: its JSON text in pieces, and what the key decided."""

    record: _Pieces
    warnings: tuple[_Pieces, ...]  # the decision's own warnings
    positioned: tuple[tuple[str, float | None, float | None], ...]  # analyte, reference
    decision: Decision  # its warnings are the probe's: use `warnings` filled
    # Where each slot's value is among the record's slot values (`_places`).
    record_placed: tuple[tuple[int, int], ...] = ()
    warnings_placed: tuple[tuple[tuple[int, int], ...], ...] = ()

    def render(
        self,
        panel: Panel,
        limits,
        lines: Sequence[int],
        kept: dict[str, str] | None,
        quoted: Callable[..., dict[str, tuple[object, str, str]]],
        bands: Callable[..., int],
    ) -> tuple[str, tuple[str, ...]]:
        """The panel's record as JSON text, and the decision's warnings as they read
        for it."""
        errors = panel.errors
        values = [  # in RECORD_SLOTS order
            encoded(panel.patient_id),
            encoded(panel.date.isoformat() if panel.date is not None else None),
            _lines(lines),
            _listed(list(errors)) if errors else _NONE,
            None if kept is None else _listed(kept),  # type: ignore[arg-type]
            None,  # the warnings, below
        ]
        measurements = panel.measurements
        band = bands(limits) if self.positioned else 0
        for analyte, low, high in self.positioned:
            values += quoted(analyte, measurements[analyte], low, high, limits, band)
        decided = tuple(
            pieces.text(values, placed)
            for pieces, placed in zip(self.warnings, self.warnings_placed, strict=True)
        )
        shown = (*panel.warnings, *decided)
        values[5] = _listed(list(dict.fromkeys(shown))) if shown else _NONE
        return self.record.fill(values, self.record_placed), decided


class ReportTemplates:
    """The templates of one run: built once per key, from the engine's report of a probe."""

    def __init__(self, core: DecisionCore, kept: Sequence[str] = ()):
        self.core = core
        self.kept = tuple(kept)  # the --keep column names, when the records carry them
        self.built: dict[Hashable, ReportTemplate] = {}
        self._equation = egfr_equation(core.ranges)
        self._slots: dict[Hashable, tuple[tuple[object, str, str], ...]] = {}
        # (id of a Measurement, its limits' band) -> it and its slots
        self._quoted: dict[tuple[int, int], tuple] = {}
        self._bands: dict[int, tuple] = {}  # id of a Limits -> it and its band
        self._band_numbers: dict[Hashable, int] = {}  # Limits.key -> its band

    def key(self, panel: Panel) -> tuple:
        """The decision's key, and what texts quote beyond it: the exact days on
        therapy, and whether the panel is dated (an undated panel's texts quote today)."""
        return (
            self.core.key(panel),
            therapy_days(panel, self.core.today),
            panel.date is None,
        )

    def limits(self, panel: Panel):
        return self.core.ranges.limits(
            panel.sex, panel.age, self.core.guideline, panel.context.pregnancy_trimester
        )

    def template(self, panel: Panel) -> ReportTemplate | None:
        """The template of the panel's key (built from this panel when it is the first)."""
        key = self.key(panel)
        if key in self.built:
            return self.built[key]
        if len(self.built) >= MAX_TEMPLATES:
            self.built.clear()  # memory stays bounded; keys are built again
        found = self.built[key] = self.build(panel)
        return found

    def templates_of(self, panels: Sequence[Panel], build=None) -> list[ReportTemplate | None]:
        """The template of each panel's key; the keys not built yet are built from their
        first panel by `build(panels)` (by default one by one, here)."""
        if len(self.built) >= MAX_TEMPLATES:
            self.built.clear()  # memory stays bounded; keys are built again
        keys = [self.key(panel) for panel in panels]
        missing: dict[Hashable, Panel] = {}
        for key, panel in zip(keys, panels, strict=True):
            if key not in self.built:
                missing.setdefault(key, panel)
        if missing:
            made = (build or (lambda new: [self.build(panel) for panel in new]))(
                list(missing.values())
            )
            self.built.update(zip(missing, made, strict=True))
        return [self.built[key] for key in keys]

    def band(self, limits) -> int:
        """A number for the limits in force, the same for every Limits with one key."""
        found = self._bands.get(id(limits))
        if found is not None and found[0] is limits:
            return found[1]
        if len(self._bands) >= MAX_QUOTED:
            self._bands.clear()
        number = self._band_numbers.setdefault(limits.key, len(self._band_numbers))
        self._bands[id(limits)] = (limits, number)  # kept, so that its id stays its own
        return number

    def quoted(
        self, analyte: str, measurement: Measurement, low, high, limits, band: int
    ) -> tuple[tuple[object, str, str], ...]:
        """A value's slots, in VALUE_SLOTS order: as shown, as input, its value and
        reference limits rounded to the decimals shown (`shown_against`, b12lab.engine),
        once per distinct value and limits."""
        # The reading layer reads each distinct cell once: one Measurement object each.
        kept = self._quoted.get((id(measurement), band))
        if kept is not None and kept[0] is measurement:
            return kept[1]
        key = (analyte, band, measurement)
        found = self._slots.get(key)
        if found is None:
            shown = shown_against(evolve(_ONE, measurements={analyte: measurement}), limits)
            rounded = shown.measurements[analyte]
            decimals = rounded.decimals
            found = (
                encoded(rounded.shown()),
                encoded(rounded.input),
                encoded(rounded_number(rounded.value, decimals)),
                encoded(rounded_number(low, decimals)),
                encoded(rounded_number(high, decimals)),
            )
            if len(self._slots) >= MAX_QUOTED:
                self._slots.clear()
            self._slots[key] = found
        if len(self._quoted) >= MAX_QUOTED:
            self._quoted.clear()
        self._quoted[id(measurement), band] = (measurement, found)  # kept: its id stays its own
        return found

    def exact(self, panel: Panel) -> frozenset[str]:
        """Values the key holds exactly because a derived value quotes them as read."""
        measurements = panel.measurements
        exact: set[str] = set()
        if ANC.applies(measurements):
            exact.update(ANC.inputs)
        if self._equation is not None and EGFR.applies(measurements):
            exact.update(EGFR.inputs)
        return frozenset(exact)

    def build(self, panel: Panel) -> ReportTemplate | None:
        """The engine's report of a probe of `panel`, as a template (None when a text
        of the panel holds the characters tokens are made of)."""
        exact = self.exact(panel)
        measurements = {}
        for analyte, measurement in panel.measurements.items():
            if analyte in exact or measurement.derived:
                measurements[analyte] = measurement
                continue
            probe = object.__new__(_QuotedMeasurement)
            probe.__dict__.update(measurement.__dict__)
            probe.__dict__["input"] = token(f"{INPUT}:{analyte}")
            measurements[analyte] = probe
        date = panel.date
        if date is not None:
            date = _QuotedDate(date.year, date.month, date.day)
            date.__dict__["token"] = token(DATE)
        probe_panel = evolve(
            panel,
            measurements=measurements,
            date=date,
            patient_id=token(PATIENT),
            warnings=(),
            errors=(),
        )
        report = self.core.report(probe_panel)
        document = report.to_dict()
        positioned = []
        for entry, measurement in zip(document["measurements"], report.measurements, strict=True):
            if not isinstance(measurement, _QuotedMeasurement):
                continue
            analyte = measurement.analyte
            entry[VALUE] = token(f"{VALUE}:{analyte}")
            entry["reference"]["low"] = token(f"{LOW}:{analyte}")
            entry["reference"]["high"] = token(f"{HIGH}:{analyte}")
            positioned.append((analyte, measurement.reference_low, measurement.reference_high))
        document[WARNINGS] = token(WARNINGS)
        document[ERRORS] = token(ERRORS)
        document[LINES] = token(LINES)  # where `record_dict` puts them: after the report
        if self.kept:
            document[KEPT] = token(KEPT)
        text = json.dumps(document, ensure_ascii=False)
        decision = Decision(
            outcome=Outcome.of(report),
            warnings=(),
            guideline=report.guideline,
            provenance=tuple(report.provenance.items()),
            derived=tuple(m.analyte for m in report.measurements if m.derived),
        )
        record = _Pieces.of(text)
        warnings = tuple(_Pieces.of(warning) for warning in report.warnings)
        places = {name: place for place, name in enumerate(RECORD_SLOTS)}
        for number, (analyte, _, _) in enumerate(positioned):
            for kind, name in enumerate(VALUE_SLOTS):
                places[f"{name}:{analyte}"] = len(RECORD_SLOTS) + len(VALUE_SLOTS) * number + kind
        for pieces in (record, *warnings):
            if not {name for name, _ in pieces.slots} <= places.keys():
                # A text the key holds exactly (a censored input, a laboratory's
                # range) carries the tokens' own characters: no template for this key.
                return None
        return ReportTemplate(
            record=record,
            warnings=warnings,
            positioned=tuple(positioned),
            decision=decision,
            record_placed=record.placed(places),
            warnings_placed=tuple(pieces.placed(places) for pieces in warnings),
        )

    def render(
        self, panel: Panel, lines: Sequence[int], kept: Sequence[str] = ()
    ) -> tuple[str, Decision, tuple[str, ...]] | None:
        """The panel's record as JSON text, its decision, and the decision's warnings
        as they read for this panel (None: no template for it, write its own report)."""
        template = self.template(panel)
        if template is None:
            return None
        cells = None
        if self.kept:
            cells = dict(zip(self.kept, kept or ("",) * len(self.kept), strict=True))
        text, decided = template.render(
            panel, self.limits(panel), lines, cells, self.quoted, self.band
        )
        return text, template.decision, decided
