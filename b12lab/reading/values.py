"""Reads one result as printed on a lab slip: `180 pg/mL`, `<50`, `> 1476 pg/mL`.

The same reader serves flags, panel files and CSV cells, so a value means the
same thing wherever it is typed.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

from b12lab.errors import ImplausibleValueError, InputError
from b12lab.model import Measurement, format_number
from b12lab.ranges import Ranges

MAX_VALUE_LENGTH = 80
MISSING_TOKENS = frozenset(
    {
        "",
        "n/a",
        "na",
        "nan",
        "-",
        "--",
        "pending",
        "not done",
        "notdone",
        "nd",
        "none",
        "null",
        "cancelled",
        "canceled",
        "see note",
        "tnp",
        "qns",
        ".",
    }
)
_CENSOR = {"<": "<", "<=": "<", "=<": "<", "≤": "<", ">": ">", ">=": ">", "=>": ">", "≥": ">"}
_RESULT = re.compile(
    r"^(?P<censor><=|>=|=<|=>|<|>|≤|≥)?\s*"
    r"(?P<number>[+-]?(?:\d[\d,.]*|[.,]\d+)(?:[eE][+-]?\d+)?)"
    r"\s*(?P<unit>.*)$"
)
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+$")


@dataclass(frozen=True)
class Reading:
    """A result split into its parts, before any unit is applied."""

    number: float
    unit: str | None
    censored: str | None
    note: str | None = None


def is_missing(text: str) -> bool:
    """Empty cells and the usual 'no result' tokens are missing, not errors."""
    return text.strip().casefold() in MISSING_TOKENS


def _ascii_digits(text: str) -> str:
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKC", text)
    return "".join(
        str(unicodedata.decimal(ch)) if ch.isdecimal() and not ch.isascii() else ch for ch in text
    )


def read_result(text: str, analyte: str, *, decimal_comma: bool = False) -> Reading:
    """Split `> 1476 pg/mL` into censor, number and unit text.

    With `decimal_comma` (a `;`-delimited export) `1,5` is 1.5; elsewhere a
    comma before exactly three digits groups thousands (`250,000`) and any
    other comma is a decimal comma.
    """
    if len(text) > MAX_VALUE_LENGTH:
        raise InputError(
            f"{analyte} value is {len(text)} characters long",
            field=analyte,
            value=text[:30] + "...",
            fix="give a number with an optional unit, e.g. '180 pg/mL'",
        )
    cleaned = _ascii_digits(text).strip().replace("\u00a0", " ").replace("\u2212", "-")
    match = _RESULT.match(cleaned)
    if not match:
        raise InputError(
            f"{analyte} value '{text.strip()}' is not a number",
            field=analyte,
            value=text,
            fix="write a number with an optional unit, e.g. '180 pg/mL' or '<50'",
        )
    number_text, note = _decimal_point(match.group("number"), decimal_comma, analyte, text)
    try:
        number = float(number_text)
    except ValueError:
        raise InputError(
            f"{analyte} value '{text.strip()}' is not a number",
            field=analyte,
            value=text,
            fix="write the number once, e.g. '1500' or '1.5'",
        ) from None
    if not math.isfinite(number):
        raise InputError(
            f"{analyte} value '{text.strip()}' is too large to be a result",
            field=analyte,
            value=text,
            fix="check the exponent",
        )
    unit = match.group("unit").strip() or None
    censor = match.group("censor")
    return Reading(number, unit, _CENSOR[censor] if censor else None, note)


def _decimal_point(
    number: str, decimal_comma: bool, analyte: str, text: str
) -> tuple[str, str | None]:
    if "," not in number:
        return number, None
    if "." in number:
        # Both marks: the last one is the decimal point, the other groups thousands.
        if number.rfind(",") > number.rfind("."):
            return number.replace(".", "").replace(",", "."), None
        return number.replace(",", ""), None
    if number.count(",") > 1 or (not decimal_comma and _THOUSANDS.match(number)):
        if not _THOUSANDS.match(number):
            raise InputError(
                f"{analyte} value '{text.strip()}' has more than one decimal comma",
                field=analyte,
                value=text,
                fix="write one decimal mark, e.g. '1.5'",
            )
        plain = number.replace(",", "")
        return plain, f"{analyte}: read '{number}' as {plain} (comma as thousands separator)"
    return number.replace(",", "."), None


def measure(
    ranges: Ranges,
    analyte: str,
    raw: object,
    *,
    decimal_comma: bool = False,
    unit: str | None = None,
) -> tuple[Measurement, list[str]]:
    """One result in the analyte's canonical unit, with any warnings it raises.

    `unit` is a unit given apart from the value (a CSV unit column or header).
    Raises InputError for text that is not a result, UnitError for a unit the
    analyte does not accept, ImplausibleValueError for an impossible value.
    """
    spec = ranges.analytes[analyte]
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise InputError(
            f"{analyte} value must be a number or text like '180 pg/mL'",
            field=analyte,
            value=str(raw)[:40],
            fix="write the value as on the lab slip",
        )
    text = raw if isinstance(raw, str) else repr(raw)
    reading = read_result(text, analyte, decimal_comma=decimal_comma)
    warnings = [reading.note] if reading.note else []
    given_unit = reading.unit or (unit.strip() if unit and unit.strip() else None)
    if reading.unit and unit and unit.strip() and reading.unit != unit.strip():
        warnings.append(
            f"{analyte}: the value carries unit '{reading.unit}', used instead of '{unit.strip()}'"
        )
    if given_unit is None:
        factor = 1.0
        warnings.append(
            f"{analyte}: no unit given; read as {spec.canonical_unit} (the canonical unit)"
        )
    else:
        factor = ranges.units.factor(analyte, given_unit)
    value = reading.number * factor
    shown_input = text.strip() if reading.unit or not given_unit else f"{text.strip()} {given_unit}"
    _check_plausible(ranges, analyte, reading, given_unit, value)
    if reading.censored:
        warnings.append(
            f"{analyte}: censored result {shown_input}; interpreted as "
            f"{'below' if reading.censored == '<' else 'above'} "
            f"{format_number(value, spec.decimals)} {spec.canonical_unit}"
        )
    measurement = Measurement(
        analyte=analyte,
        value=value,
        unit=spec.canonical_unit,
        input=shown_input,
        censored=reading.censored,
        unit_assumed=given_unit is None,
        decimals=spec.decimals,
    )
    return measurement, warnings


def _check_plausible(
    ranges: Ranges, analyte: str, reading: Reading, unit: str | None, value: float
) -> None:
    spec = ranges.analytes[analyte]
    if reading.number < 0:
        raise ImplausibleValueError(
            f"{analyte} value {format_number(reading.number, 6)} is negative",
            field=analyte,
            value=str(reading.number),
            fix="a concentration or count cannot be below zero; check the sign",
        )
    if spec.plausible_low <= value <= spec.plausible_high:
        return
    shown_unit = unit or spec.canonical_unit
    number = format_number(reading.number, 6)
    hints = _likely_units(ranges, analyte, reading.number, shown_unit)
    plausible = (
        f"{format_number(spec.plausible_low, 6)}-{format_number(spec.plausible_high, 6)} "
        f"{spec.canonical_unit}"
    )
    fix = "did you mean " + " or ".join(hints) + "?" if hints else "check the value and its unit"
    raise ImplausibleValueError(
        f"{analyte} value {number} {shown_unit} is outside the plausible range {plausible}",
        field=analyte,
        value=f"{number} {shown_unit}",
        fix=fix,
    )


def _typical(low: float | None, high: float | None) -> float:
    """A typical value: the geometric middle of the reference interval."""
    if low and high:
        return math.sqrt(low * high)
    return (low * 2 if low else None) or (high / 2 if high else 1.0)


def _likely_units(ranges: Ranges, analyte: str, number: float, unit: str) -> list[str]:
    """Accepted units under which the same number would be a plausible result.

    Power-of-ten slips first, then nearest to the adult reference interval:
    250000 'x10^9/L' platelets was most likely 250000 /uL; 9.0 'g/L'
    hemoglobin was most likely 9.0 g/dL.
    """
    spec = ranges.analytes[analyte]
    middle = _typical(spec.bands[-1].low, spec.bands[-1].high)
    candidates = []
    seen_factors = [ranges.units.factor(analyte, unit)]
    for spelling in ranges.units.accepted(analyte):
        factor = ranges.units.factor(analyte, spelling)
        if any(math.isclose(factor, f) for f in seen_factors):
            continue
        seen_factors.append(factor)
        value = number * factor
        if spec.plausible_low < value <= spec.plausible_high:
            distance = abs(math.log10(value / middle))
            # Slips are usually a power of ten (g/L for g/dL, 10^9/L for /uL).
            scale = math.log10(factor / seen_factors[0])
            decimal_slip = math.isclose(scale, round(scale), abs_tol=1e-9)
            if distance <= 1.5:
                candidates.append((not decimal_slip, distance, spelling, value))
    candidates.sort()
    return [
        f"{format_number(number, 6)} {spelling} (= {format_number(value, spec.decimals)} "
        f"{spec.canonical_unit})"
        for _, _, spelling, value in candidates[:2]
    ]
