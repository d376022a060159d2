"""One patient's dated panels -> a report about the latest, with the earlier ones as history.

Panels are put in date order (the order in the file does not matter); panels
of the same date are merged. Nothing measured earlier is silently treated as
measured on the latest date: the only value carried forward is B12 (status
needs it), and the report says from which date it came.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from b12lab.engine import evaluate, flag_for
from b12lab.model import HistoryPoint, Panel, Report, display_decimals
from b12lab.ranges import Ranges
from b12lab.reading.panel import conflict_reason, same_result


def merge_same_day(panels: list[Panel]) -> tuple[list[Panel], list[str]]:
    """Panels in date order, one per date, under the reading layer's duplicate rule.

    A result given on two panels of the same date is kept once when equal;
    two different results are both dropped and the panel carries an error.
    """
    warnings: list[str] = []
    by_date: dict[dt.date | None, Panel] = {}
    for panel in panels:
        earlier = by_date.get(panel.date)
        if earlier is None:
            by_date[panel.date] = panel
            continue
        measurements = dict(earlier.measurements)
        errors = list(earlier.errors + panel.errors)
        for analyte, measurement in panel.measurements.items():
            other = measurements.get(analyte)
            if other is None:
                measurements[analyte] = measurement
            elif not same_result(other, measurement):
                del measurements[analyte]
                errors.append(
                    f"{panel.date}: "
                    + conflict_reason(
                        analyte, ("one panel", other.input), ("another", measurement.input)
                    )
                )
        by_date[panel.date] = replace(
            earlier,
            measurements=measurements,
            warnings=earlier.warnings + panel.warnings,
            errors=tuple(errors),
        )
    ordered = sorted(by_date.values(), key=lambda p: p.date or dt.date.min)
    return ordered, warnings


def carry_b12_forward(latest: Panel, earlier: list[Panel]) -> tuple[Panel, list[str]]:
    """B12 status needs a B12: use the most recent earlier one, and say so."""
    if "b12" in latest.measurements:
        return latest, []
    for panel in reversed(earlier):
        b12 = panel.get("b12")
        if b12 is not None:
            dated = replace(b12, input=f"{b12.input} (from {panel.date})", carried_from=panel.date)
            note = (
                f"b12: not measured on {latest.date}; status uses the result of "
                f"{panel.date} ({b12.input})"
            )
            start = latest.context.b12_therapy_start
            if start is not None and panel.date is not None and panel.date < start:
                note += ", taken before B12 therapy started"
            return replace(latest, measurements={"b12": dated, **latest.measurements}), [note]
    return latest, []


def history_points(
    panels: list[Panel], ranges: Ranges, guideline: str | None
) -> dict[str, tuple[HistoryPoint, ...]]:
    """Each analyte's results over time, flagged against the patient's limits."""
    history: dict[str, list[HistoryPoint]] = {}
    for panel in panels:
        limits = ranges.limits(panel.sex, panel.age, guideline, panel.context.pregnancy_trimester)
        for analyte in ranges.analytes:
            measurement = panel.get(analyte)
            if measurement is None:
                continue
            flag, _ = flag_for(measurement, limits)
            spec = ranges.analytes[analyte]
            history.setdefault(analyte, []).append(
                HistoryPoint(
                    panel.date,
                    round(
                        measurement.value,
                        display_decimals(
                            measurement.value, spec.decimals, limits.cut_points(analyte)
                        ),
                    ),
                    flag,
                    measurement.censored,
                )
            )
    return {analyte: tuple(points) for analyte, points in history.items()}


def evaluate_panels(
    panels: list[Panel],
    ranges: Ranges,
    *,
    guideline: str | None = None,
    today: dt.date | None = None,
) -> Report:
    """Interpret the latest of one patient's panels, using the earlier ones as history."""
    ordered, warnings = merge_same_day(panels)
    latest, earlier = ordered[-1], ordered[:-1]
    if not earlier:
        return evaluate(
            replace(latest, warnings=latest.warnings + tuple(warnings)),
            ranges,
            guideline=guideline,
            today=today,
        )
    history = history_points(ordered, ranges, guideline)
    latest, carried = carry_b12_forward(latest, earlier)
    latest = replace(latest, warnings=latest.warnings + tuple(warnings + carried))
    report = evaluate(latest, ranges, guideline=guideline, history=tuple(earlier), today=today)
    return replace(report, history=history)
