"""The library entry points that the CLI, notebooks and other programs share."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from b12lab.errors import InputError
from b12lab.model import Context, Report
from b12lab.ranges import Ranges, load_ranges
from b12lab.reading.fields import parse_age, parse_alcohol, parse_date, parse_sex
from b12lab.reading.sources.panel_file import PatientRecord, RawPanel, build_panel
from b12lab.reading.trimester import check_pregnancy, parse_trimester
from b12lab.rules.catalogue import Catalogue, catalogue_in_force, load_lab_rules
from b12lab.timeline import evaluate_panels


def interpret(
    values: Mapping[str, object],
    *,
    sex: str | None = None,
    age: float | None = None,
    date: dt.date | str | None = None,
    patient_id: str | None = None,
    b12_therapy_start: dt.date | str | None = None,
    days_on_therapy: int | None = None,
    alcohol_use: bool | str = False,
    neuro_symptoms: bool = False,
    hypersegmented_neutrophils: bool = False,
    pregnancy_trimester: int | str | None = None,
    guideline: str | None = None,
    ranges: Ranges | None = None,
    today: dt.date | None = None,
    as_of: dt.date | str | None = None,
    rules: str | Path | Catalogue | None = None,
) -> Report:
    """Interpret one panel given as `{"b12": "180 pg/mL", "platelets": "95"}`.

    Keys may be analyte keys, aliases or LOINC codes. Raises InputError
    (or a subclass) for any value that cannot be used. `as_of` (or `today`)
    fixes the evaluation date: the default panel date and the days on therapy.
    `alcohol_use` is True or "current" (heavy use now) or "stopped" (recently stopped).
    `rules` is a laboratory's rules file (or a loaded Catalogue) overlaid on b12lab's.
    """
    if as_of is not None:
        today = parse_date(as_of, "as_of")
    ranges = ranges or load_ranges()
    alcohol_current, alcohol_stopped = parse_alcohol(alcohol_use)
    record = PatientRecord(
        patient_id=patient_id,
        sex=parse_sex(sex),
        age=parse_age(age),
        context=Context(
            b12_therapy_start=parse_date(b12_therapy_start, "b12_therapy_start"),
            days_on_therapy=days_on_therapy,
            alcohol_use=alcohol_current,
            alcohol_stopped=alcohol_stopped,
            neuro_symptoms=neuro_symptoms,
            hypersegmented_neutrophils=hypersegmented_neutrophils,
            pregnancy_trimester=parse_trimester(pregnancy_trimester),
        ),
    )
    panel = RawPanel(parse_date(date, "date"))
    for key, value in values.items():
        analyte = ranges.analyte_for(str(key))
        if analyte is None:
            raise InputError(
                f"unknown analyte '{key}'", fix="use one of: " + ", ".join(ranges.analytes)
            )
        panel.values.append((analyte, str(key), value))
    record.panels.append(panel)
    if rules is not None and not isinstance(rules, Catalogue):
        rules = load_lab_rules(rules, frozenset(ranges.sources))
    with catalogue_in_force(rules):
        return interpret_record(record, guideline=guideline, ranges=ranges, today=today)


def interpret_record(
    record: PatientRecord,
    *,
    guideline: str | None = None,
    ranges: Ranges | None = None,
    today: dt.date | None = None,
) -> Report:
    """Interpret a patient's record: its latest panel, with earlier ones as history."""
    ranges = ranges or load_ranges()
    today = today or dt.date.today()
    check_pregnancy(record.sex, record.context.pregnancy_trimester)
    if len(record.panels) > 1:
        for index, raw in enumerate(record.panels, start=1):
            if raw.date is None:
                raise InputError(
                    f"panel {index} has no date",
                    fix="give every panel of a timeline its collection date",
                )
    panels = [
        build_panel(
            raw.values,
            ranges,
            date=raw.date or today,
            patient_id=record.patient_id,
            sex=record.sex,
            age=record.age,
            context=record.context,
        )
        for raw in record.panels
    ]
    if len(panels) == 1 and not panels[0].measurements:
        panels[0] = replace(panels[0], warnings=(*panels[0].warnings, "no lab values were given"))
    report = evaluate_panels(panels, ranges, guideline=guideline, today=today)
    if report.errors:
        raise InputError(report.errors[0], fix="keep one result per analyte and date")
    return report
