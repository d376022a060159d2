"""`b12lab convert`: one value from one unit of an analyte to another."""

from __future__ import annotations

import math

from b12lab.errors import InputError
from b12lab.model import format_number
from b12lab.ranges import Ranges
from b12lab.reading.values import read_result


def _candidates(ranges: Ranges, units: list[str]) -> list[str]:
    """Analytes whose listed spellings include every one of `units`."""
    return [a for a in ranges.analytes if all(ranges.units.lists(a, u) for u in units)]


def convert_value(
    ranges: Ranges, value: str, unit: str | None, to: str | None, analyte: str | None
) -> dict:
    """`{"value": 221.3, "unit": "pmol/L", "analyte": "b12"}` for 300 pg/mL of B12."""
    text = value if unit is None else f"{value} {unit}"
    if analyte is not None:
        key = ranges.analyte_for(analyte)
        if key is None:
            raise InputError(
                f"unknown analyte '{analyte}'", fix="use one of: " + ", ".join(ranges.analytes)
            )
        analyte = key
    reading = read_result(text, analyte or "value")
    if reading.censored:
        raise InputError(f"'{text}' is a censored result", fix="convert the number alone")
    if reading.unit is None:
        raise InputError(f"'{text}' has no unit", fix="e.g. b12lab convert 300 pg/mL --to pmol/L")
    if analyte is None:
        units = [reading.unit] + ([to] if to else [])
        candidates = _candidates(ranges, units)
        factors = {
            round(
                ranges.units.factor(a, reading.unit)
                / ranges.units.factor(a, to or ranges.analytes[a].canonical_unit),
                12,
            )
            for a in candidates
        }
        if not candidates or (len(factors) > 1 or not to):
            names = ", ".join(candidates) if candidates else "none"
            raise InputError(
                f"cannot tell which analyte '{text}' is (analytes accepting it: {names})",
                fix="add --analyte, e.g. --analyte b12",
            )
        analyte = candidates[0]
    spec = ranges.analytes[analyte]
    target = to or spec.canonical_unit
    canonical = reading.number * ranges.units.factor(analyte, reading.unit)
    target_factor = ranges.units.factor(analyte, target)
    if not math.isfinite(target_factor) or target_factor <= 0:
        raise InputError(
            f"'{target}' is not a unit a value can be converted to",
            fix="use one of: " + ", ".join(ranges.units.accepted(analyte)),
        )
    converted = canonical / target_factor
    if not math.isfinite(converted):
        raise InputError(f"'{text}' is too large to convert", fix="check the value")
    decimals = spec.decimals if target == spec.canonical_unit else max(spec.decimals, 2)
    rounded = round(converted, decimals)
    return {
        "value": rounded,
        "unit": target,
        "analyte": analyte,
        "text": f"{format_number(rounded, decimals)} {target}",
    }
