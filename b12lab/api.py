"""The library entry points that the CLI, notebooks and other programs share."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from b12lab.errors import InputError
from b12lab.model import Context, Report
from b12lab.ranges import Ranges, load_ranges
from b12lab.reading.fields import parse_age, parse_alcohol, parse_date, parse_sex
from b12lab.reading.policy import ReadPolicy
from b12lab.reading.sources.panel_file import PatientRecord, RawPanel, build_panel
from b12lab.reading.trimester import check_pregnancy, parse_trimester
from b12lab.rules.catalogue import Catalogue, Cornerstone, catalogue_in_force, load_lab_rules
from b12lab.timeline import evaluate_panels


def interpret(
    values: Mapping[str, object],
    *,
    sex: str | None = None,
    age: float | str | None = None,
    date: dt.date | str | None = None,
    patient_id: str | None = None,
    b12_therapy_start: dt.date | str | None = None,
    days_on_therapy: int | None = None,
    alcohol_use: bool | str = False,
    neuro_symptoms: bool = False,
    hypersegmented_neutrophils: bool = False,
    pregnancy_trimester: int | str | None = None,
    guideline: str | None = None,
    ranges: Ranges | str | os.PathLike | None = None,
    as_of: dt.date | str | None = None,
    today: dt.date | str | None = None,
    rules: str | Path | Catalogue | None = None,
    earlier: Sequence[tuple[dt.date | str, Mapping[str, object]]] = (),
) -> Report:
    """Interpret one panel given as `{"b12": "180 pg/mL", "platelets": "95"}`.

    Keys may be analyte keys, aliases or LOINC codes. `as_of` (as --as-of; `today`
    is the same option under its older name) fixes the evaluation date, the default
    panel date and the days on therapy; it and every date take a `datetime.date`
    or ISO text ("2026-01-01"). `ranges` is a loaded Ranges or an overlay file's
    path (as --ranges). `alcohol_use` is True or "current" (heavy use now) or
    "stopped" (recently stopped). `rules` is a laboratory's rules file's path (or a
    loaded Catalogue), overlaid on b12lab's rules (as --rules). `earlier` holds the
    patient's earlier panels as (date, values) pairs: the report is then a timeline,
    as for a panel file with several dated panels (every panel needs its date). A
    value of the wrong type raises TypeError; a value that cannot be used raises
    InputError (or a subclass).
    """
    today = evaluation_date(as_of, today)
    ranges = resolve_ranges(ranges)
    if not isinstance(values, Mapping):
        raise TypeError(
            f"values takes a mapping such as {{'b12': '180 pg/mL'}}, not {type(values).__name__}"
        )
    _check_types(
        sex=(sex, (str,), "text such as 'female'"),
        age=(age, (int, float, str), "a number of years"),
        patient_id=(patient_id, (str,), "text"),
        days_on_therapy=(days_on_therapy, (int,), "a whole number of days"),
        pregnancy_trimester=(pregnancy_trimester, (int, str), "1, 2 or 3"),
        guideline=(guideline, (str,), "a profile name such as 'who'"),
    )
    if not isinstance(alcohol_use, (bool, str)):
        raise TypeError(
            f"alcohol_use takes True, False, 'current' or 'stopped', "
            f"not {type(alcohol_use).__name__}"
        )
    for name, flag in (
        ("neuro_symptoms", neuro_symptoms),
        ("hypersegmented_neutrophils", hypersegmented_neutrophils),
    ):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} takes True or False, not {type(flag).__name__}")
    if days_on_therapy is not None and days_on_therapy < 0:
        raise InputError(
            f"days_on_therapy {days_on_therapy} is negative", fix="give 0 or more days"
        )
    alcohol_current, alcohol_stopped = parse_alcohol(alcohol_use)
    record = PatientRecord(
        patient_id=patient_id,
        sex=parse_sex(sex),
        age=parse_age(age),
        context=Context(
            b12_therapy_start=option_date(b12_therapy_start, "b12_therapy_start"),
            days_on_therapy=days_on_therapy,
            alcohol_use=alcohol_current,
            alcohol_stopped=alcohol_stopped,
            neuro_symptoms=neuro_symptoms,
            hypersegmented_neutrophils=hypersegmented_neutrophils,
            pregnancy_trimester=parse_trimester(pregnancy_trimester),
        ),
    )
    if isinstance(earlier, (str, bytes, Mapping)) or not isinstance(earlier, Sequence):
        raise TypeError("earlier takes a list of (date, values) pairs")
    for index, pair in enumerate(earlier):
        if not (isinstance(pair, Sequence) and len(pair) == 2 and isinstance(pair[1], Mapping)):
            raise TypeError(f"earlier[{index}] takes a (date, values) pair")
        record.panels.append(_raw_panel(pair[1], option_date(pair[0], "earlier date"), ranges))
    record.panels.append(_raw_panel(values, option_date(date, "date"), ranges))
    with catalogue_in_force(resolve_rules(rules, ranges)):
        return interpret_record(record, guideline=guideline, ranges=ranges, as_of=today)


def replay_cases(catalogue: Catalogue, cases: Sequence[Cornerstone]) -> list[str]:
    """Each cornerstone case whose conclusion changed with `catalogue` in force, as one
    line: what it must (not) give and what it gives (`b12lab rules check`). A case that
    cannot be read is a RuleFileError naming its dotted path."""
    from b12lab.errors import B12labError
    from b12lab.rules.condition import RuleFileError

    changed = []
    for case in cases:
        try:
            report = interpret(
                case.values,
                **case.context,
                as_of=case.as_of,
                rules=catalogue,
                earlier=case.earlier,
            )
        except B12labError as error:
            raise RuleFileError(
                case.path, f"the case cannot be read: {error}", source=case.source
            ) from None
        found = [f.id for f in report.findings]
        lost = [i for i in case.gives if i not in found]
        unwanted = [i for i in case.never if i in found]
        if lost or unwanted:
            parts = [f"does not give {', '.join(lost)}"] if lost else []
            parts += [f"now gives {', '.join(unwanted)}"] if unwanted else []
            changed.append(
                f"{case.source} {case.path} ({case.name}): {'; '.join(parts)} "
                f"(findings: {', '.join(found) or 'none'})"
            )
    return changed


def _raw_panel(values: Mapping[str, object], date: dt.date | None, ranges: Ranges) -> RawPanel:
    panel = RawPanel(date)
    for key, value in values.items():
        analyte = ranges.analyte_for(str(key))
        if analyte is None:
            raise InputError(
                f"unknown analyte '{key}'", fix="use one of: " + ", ".join(ranges.analytes)
            )
        panel.values.append((analyte, str(key), value))
    return panel


def resolve_rules(rules: str | os.PathLike | Catalogue | None, ranges) -> Catalogue | None:
    """`rules` as the Python API takes it: None (b12lab's own), a laboratory's rules
    file's path (checked against the ranges' sources), or a loaded Catalogue."""
    if rules is None or isinstance(rules, Catalogue):
        return rules
    if not isinstance(rules, (str, os.PathLike)):
        raise TypeError(
            f"rules takes a rules file's path or a Catalogue, not {type(rules).__name__}"
        )
    return load_lab_rules(os.fspath(rules), frozenset(ranges.sources))


def option_date(value: object, name: str) -> dt.date | None:
    """A date option of the Python API: a `datetime.date` (or datetime) or ISO text."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return parse_date(value, name)
    raise TypeError(
        f"{name} takes a datetime.date or ISO text such as '2026-01-01', not {type(value).__name__}"
    )


def evaluation_date(as_of: object, today: object) -> dt.date | None:
    """The evaluation date (--as-of), given as `as_of` or by its older name `today`."""
    if as_of is not None and today is not None:
        raise TypeError("give as_of or today, not both: they are one option (--as-of)")
    if today is not None:
        return option_date(today, "today")
    return option_date(as_of, "as_of")


def resolve_ranges(ranges: object) -> Ranges:
    """`ranges` of the Python API: None (the shipped file), a Ranges, or an overlay's path."""
    if ranges is None:
        return load_ranges()
    if isinstance(ranges, Ranges):
        return ranges
    if isinstance(ranges, (str, os.PathLike)):
        return load_ranges(ranges)
    raise TypeError(
        f"ranges takes a Ranges (load_ranges()) or an overlay file's path, "
        f"not {type(ranges).__name__}"
    )


def _check_types(**options: tuple[object, tuple[type, ...], str]) -> None:
    for name, (value, kinds, expected) in options.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
            raise TypeError(f"{name} takes {expected}, not {type(value).__name__}")


def interpret_record(
    record: PatientRecord,
    *,
    guideline: str | None = None,
    ranges: Ranges | str | os.PathLike | None = None,
    as_of: dt.date | str | None = None,
    today: dt.date | str | None = None,
) -> Report:
    """Interpret a patient's record: its latest panel, with earlier ones as history.

    `as_of` and `ranges` as for `interpret`."""
    ranges = resolve_ranges(ranges)
    today = evaluation_date(as_of, today) or dt.date.today()
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
            policy=ReadPolicy(guideline=guideline),
        )
        for raw in record.panels
    ]
    if len(panels) == 1 and not panels[0].measurements:
        panels[0] = replace(panels[0], warnings=(*panels[0].warnings, "no lab values were given"))
    report = evaluate_panels(panels, ranges, guideline=guideline, today=today)
    if report.errors:
        raise InputError(report.errors[0], fix="keep one result per analyte and date")
    return report
