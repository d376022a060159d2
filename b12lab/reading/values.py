"""Reads one result as printed on a lab slip: `180 pg/mL`, `<50`, `<=0.2`, `> 1476 pg/mL`.

This is the one place where a cell's text becomes a Measurement, whatever the
source (flag, panel file, CSV cell, Python value, FHIR or HL7 result): the same
text means the same thing everywhere, and whatever is not written (a unit, the
meaning of a separator) is either stated in a Note or refused with the fix.
"""

from __future__ import annotations

import math
import numbers
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from b12lab.errors import (
    AmbiguousValueError,
    ImplausibleValueError,
    InputError,
    UnitError,
    UnreportedValueError,
)
from b12lab.model import Measurement, format_number
from b12lab.ranges import Ranges
from b12lab.reading.policy import (
    CENSORED,
    COMMA,
    POINT,
    SEPARATOR,
    TYPED,
    UNIT_ASSUMED,
    UNIT_CONFLICT,
    UNIT_UNUSUAL,
    UNREPORTED,
    Note,
    ReadPolicy,
)
from b12lab.units import to_canonical

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
        "~",
        "cancelled",
        "canceled",
        "see note",
        "tnp",
        "qns",
        ".",
    }
)
# Censoring signs as labs print them; `<=` keeps its meaning (the value may equal the bound).
_CENSOR = {
    "<": "<",
    "＜": "<",
    "<=": "<=",
    "=<": "<=",
    "≤": "<=",
    "⩽": "<=",
    ">": ">",
    "＞": ">",
    ">=": ">=",
    "=>": ">=",
    "≥": ">=",
    "⩾": ">=",
}
# `\d` matches any script's decimal digits but not superscripts, so `95 ×10⁹/L`
# keeps its unit's exponent while `١٨٠ pg/mL` still reads as 180.
_RESULT = re.compile(
    r"^(?P<censor><=|>=|=<|=>|<|>|≤|≥|⩽|⩾|＜|＞)?\s*"
    r"(?P<number>[+-]?(?:\d[\d,.]*|[.,]\d+)(?:[eE][+-]?\d+)?)"
    r"\s*(?P<unit>.*)$"
)
_GROUPED = {
    ",": re.compile(r"^\d{1,3}(?:,\d{3})+$"),
    ".": re.compile(r"^\d{1,3}(?:\.\d{3})+$"),
}
# One separator followed by exactly three digits, after a first group that is not 0:
# `1.476` and `1,476` could each be a decimal or a thousands group.
_AMBIGUOUS = re.compile(r"^[1-9]\d{0,2}[.,]\d{3}$")
# `1 200` or `1'200`: a number whose thousands are grouped by a space or an apostrophe
# would otherwise read as 1 with the "unit" 200.
_SPACE_GROUPED = (re.compile(r"^[+-]?\d{1,3}$"), re.compile(r"^['’]?\d{3}(?:$|[\s'’/])"))


@dataclass(frozen=True)
class Reading:
    """A result split into its parts, before any unit is applied."""

    number: float
    unit: str | None
    censored: str | None
    note: Note | None = None


def is_missing(value: object) -> bool:
    """No result: None, NaN, pandas' NA/NaT, an empty cell or a 'no result' token."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str):
        return value.strip().casefold() in MISSING_TOKENS
    if type(value).__name__ in ("NAType", "NaTType"):
        return True
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, int)):
        try:
            return math.isnan(float(value))
        except (TypeError, ValueError):
            return False
    return False


def cell_text(value: object, field: str) -> str:
    """A cell as text: numbers given as numbers are written exactly, never localized."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise InputError(
            f"{field} value must be a number or text like '180 pg/mL', not {value}",
            field=field,
            value=str(value),
            fix="write the value as on the lab slip",
        )
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    if type(value).__name__ == "Decimal":
        return str(value)
    raise InputError(
        f"{field} value must be a number or text like '180 pg/mL'",
        field=field,
        value=str(value)[:40],
        fix="write the value as on the lab slip",
    )


def _ascii_digits(number: str) -> str:
    if number.isascii():
        return number
    return "".join(
        str(unicodedata.decimal(ch)) if ch.isdecimal() and not ch.isascii() else ch for ch in number
    )


def read_result(text: str, analyte: str, *, decimal: str | None = TYPED) -> Reading:
    """Split `> 1476 pg/mL` into censor, number and unit text.

    `decimal` is the input's convention for `.` and `,` (see reading.policy);
    a number that the convention cannot decide is refused, naming both readings.
    """
    if len(text) > MAX_VALUE_LENGTH:
        raise InputError(
            f"{analyte} value is {len(text)} characters long",
            field=analyte,
            value=text[:30] + "...",
            fix="give a number with an optional unit, e.g. '180 pg/mL'",
        )
    cleaned = text.strip().replace("\u00a0", " ").replace("\u202f", " ").replace("\u2212", "-")
    match = _RESULT.match(cleaned)
    if not match:
        raise InputError(
            f"{analyte} value '{text.strip()}' is not a number",
            field=analyte,
            value=text,
            fix="write a number with an optional unit, e.g. '180 pg/mL' or '<50'",
        )
    if _SPACE_GROUPED[0].match(match.group("number")) and _SPACE_GROUPED[1].match(
        match.group("unit")
    ):
        raise InputError(
            f"{analyte} value '{text.strip()}' has a space or an apostrophe between its digits",
            field=analyte,
            value=text,
            fix="write the number without a thousands separator, e.g. '1200'",
        )
    number_text, note = _decimal_point(
        _ascii_digits(match.group("number")), decimal, analyte, text.strip()
    )
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
    number: str, decimal: str | None, analyte: str, text: str
) -> tuple[str, Note | None]:
    """The number with a plain decimal point, and a note when a convention decided it."""
    sign = number[0] if number[:1] in "+-" else ""
    digits = number[len(sign) :]
    mantissa, exponent = re.match(r"^([^eE]*)(.*)$", digits).groups()
    has_comma, has_point = "," in mantissa, "." in mantissa
    if not has_comma and not has_point:
        return number, None
    if has_comma and has_point:
        # Both marks: the last one is the decimal mark, the other groups thousands.
        mark = "," if mantissa.rfind(",") > mantissa.rfind(".") else "."
        group = "." if mark == "," else ","
        whole, _, fraction = mantissa.rpartition(mark)
        if not _GROUPED[group].match(whole) or not fraction.isdigit():
            raise _not_a_number(analyte, text)
        return sign + whole.replace(group, "") + "." + fraction + exponent, None
    mark = "," if has_comma else "."
    if mantissa.count(mark) > 1:
        if not _GROUPED[mark].match(mantissa):
            raise InputError(
                f"{analyte} value '{text}' has more than one decimal "
                + ("comma" if mark == "," else "point"),
                field=analyte,
                value=text,
                fix="write one decimal mark, e.g. '1.5'",
            )
        return sign + mantissa.replace(mark, "") + exponent, None
    as_decimal = sign + mantissa.replace(",", ".") + exponent
    as_grouped = sign + mantissa.replace(mark, "") + exponent
    if not _AMBIGUOUS.match(mantissa) or exponent:
        return as_decimal, None  # `1,5`, `0,476`, `12.34`: only a decimal mark reads them
    reads_as_decimal = {
        POINT: mark == ".",
        COMMA: mark == ",",
        TYPED: mark == ".",  # typed input: a dot is the decimal mark, a comma groups
    }.get(decimal)
    if reads_as_decimal is None:
        name = "comma" if mark == "," else "dot"
        raise InputError(
            f"{analyte} value '{text}' is ambiguous: {as_grouped} if the {name} groups "
            f"thousands, {as_decimal} if it is the decimal mark",
            field=analyte,
            value=text,
            fix=f"write {as_grouped} or {as_decimal}"
            + ("" if decimal == TYPED else ", or give the file's decimal mark with --decimal"),
        )
    if reads_as_decimal:
        return as_decimal, None
    name = "comma" if mark == "," else "dot"
    return as_grouped, Note(
        SEPARATOR,
        analyte,
        f"'{mark}' read as a thousands separator",
        f"{analyte}: read '{text}' as {as_grouped} ({name} as thousands separator"
        + (")" if decimal == TYPED else ", the file's convention)"),
    )


def decimal_evidence(text: object) -> str | None:
    """Which mark a cell shows to be its decimal mark, when only one reading exists.

    `1,5` and `1.200,5` show a decimal comma, `12.34` and `1,200.5` a decimal
    point; `1.476`, `1,476` and `150` show nothing.
    """
    if not isinstance(text, str):
        return None
    match = _RESULT.match(text.strip())
    if not match:
        return None
    mantissa = re.split(r"[eE]", match.group("number").lstrip("+-"))[0]
    if "," in mantissa and "." in mantissa:
        return "," if mantissa.rfind(",") > mantissa.rfind(".") else "."
    for mark, other in ((",", "."), (".", ",")):
        if mark in mantissa:
            if mantissa.count(mark) > 1:
                return other if _GROUPED[mark].match(mantissa) else None
            return None if _AMBIGUOUS.match(mantissa) else mark
    return None


def _not_a_number(analyte: str, text: str) -> InputError:
    return InputError(
        f"{analyte} value '{text}' is not a number",
        field=analyte,
        value=text,
        fix="write one decimal mark and no other separators, e.g. '1500' or '1.5'",
    )


class UnitHint(NamedTuple):
    """A unit given apart from the value, and where it came from (for messages)."""

    unit: str
    source: str  # "unit column 'B12_unit'", "header 'B12 (pg/mL)'", "--unit b12=pg/mL"
    # Units also given for the value, in an order of precedence below `unit`: (unit, source).
    overridden: tuple[tuple[str, str], ...] = ()


def measure(
    ranges: Ranges,
    analyte: str,
    raw: object,
    *,
    hint: UnitHint | None = None,
    policy: ReadPolicy | None = None,
    reported_only: bool = True,
) -> tuple[Measurement, list[Note]]:
    """One result in the analyte's canonical unit, with the notes it raises.

    The unit comes from the value itself, else from `hint` (a unit column, the
    header, --unit, a message's unit field), else the canonical unit is
    assumed and a note says so (with `policy.strict`, that is an error).
    Raises InputError for text that is not a result, UnitError for a unit the
    analyte does not accept, ImplausibleValueError for an impossible value.
    """
    policy = policy or ReadPolicy()
    spec = ranges.analytes[analyte]
    text = cell_text(raw, analyte).strip()
    reading = read_result(text, analyte, decimal=policy.decimal)
    notes = [reading.note] if reading.note else []
    if reading.note and policy.strict:
        raise _strict(analyte, text, reading.note, "write the number without a thousands separator")
    hint_unit = hint.unit.strip() if hint and hint.unit.strip() else None
    unit = reading.unit or hint_unit
    if unit is None and ranges.units.one_scale(analyte):
        factor = 1.0  # every unit the analyte accepts is the canonical one (%, fL = um3)
    elif unit is None:
        problem = bare_number_problem(
            ranges, analyte, reading.number, reading.censored, policy.guideline
        )
        if problem is not None:
            raise AmbiguousValueError(
                f"{analyte} value '{text}' has no unit: {problem}",
                field=analyte,
                value=text,
                fix=f"write the unit, e.g. '{text} {_common_alternatives(ranges, analyte)[0]}'",
            )
        note = Note(
            UNIT_ASSUMED,
            analyte,
            f"no unit, read as {spec.canonical_unit}",
            f"{analyte}: no unit given; '{text}' read as {spec.canonical_unit} "
            "(the canonical unit)",
        )
        if policy.strict:
            raise _strict(
                analyte,
                text,
                note,
                "give the unit in the value, a unit column, the header or --unit KEY=UNIT",
            )
        notes.append(note)
        factor = 1.0
    else:
        try:
            factor = ranges.units.factor(analyte, unit)
        except UnitError as error:
            raise UnitError(
                f"{analyte} value '{text}': {error.message}",
                field=analyte,
                value=text,
                fix=error.fix,
            ) from None
    if (
        reading.unit
        and hint_unit
        and reading.unit != hint_unit
        and ranges.units.factor(analyte, hint_unit) != factor
    ):
        note = Note(
            UNIT_CONFLICT,
            analyte,
            f"value's own unit used instead of the {hint.source.split(' ')[0]}'s",
            f"{analyte}: the value carries unit '{reading.unit}', used instead of "
            f"'{hint_unit}' from the {hint.source}",
        )
        if policy.strict:
            raise _strict(analyte, text, note, "make the value's unit and the column's agree")
        notes.append(note)
    for other, source in hint.overridden if hint and unit else ():
        other_factor = ranges.units.factor_or_none(analyte, other)
        if other_factor is None or other_factor == factor:
            continue  # agrees, or is a description rather than a unit
        if reading.unit:
            used, kind = f"the value's own unit '{reading.unit}'", "the value's own"
        else:
            used, kind = f"'{hint_unit}' from the {hint.source}", f"the {_kind(hint.source)}'s"
        note = Note(
            UNIT_CONFLICT,
            analyte,
            f"units disagree: {kind} used, not the {_kind(source)}'s",
            f"{analyte}: {used} used, not '{other}' from the {source}",
        )
        if policy.strict:
            raise _strict(analyte, text, note, "make the units the export gives agree")
        notes.append(note)
    value = to_canonical(reading.number, factor)
    shown_input = text if reading.unit or unit is None else f"{text} {unit}"
    _check_plausible(ranges, analyte, reading, unit, value)
    if reported_only and unit is not None and factor != 1.0:
        _check_reported(ranges, analyte, reading, unit, value)
        unusual = _unusual_unit(ranges, analyte, unit, factor, value)
        if unusual is not None:
            if policy.strict:
                raise _strict(analyte, text, unusual, "write the result in a usual unit")
            notes.append(unusual)
    elif reported_only and not reading.censored and not _reportable(ranges, analyte, value):
        unreported = _unreported(ranges, analyte, shown_input, value)
        if policy.strict:
            raise _strict(analyte, text, unreported, "check the value")
        notes.append(unreported)
    if reading.censored:
        side = "below" if reading.censored.startswith("<") else "above"
        if len(reading.censored) == 2:
            side = "at or " + side
        notes.append(
            Note(
                CENSORED,
                analyte,
                "censored result",
                f"{analyte}: censored result {shown_input}; interpreted as {side} "
                f"{format_number(value, spec.decimals)} {spec.canonical_unit}",
            )
        )
    measurement = Measurement(
        analyte=analyte,
        value=value,
        unit=spec.canonical_unit,
        input=shown_input,
        censored=reading.censored,
        unit_assumed=unit is None,
        decimals=spec.decimals,
    )
    return measurement, notes


def _kind(source: str) -> str:
    """ "header" for "header 'B12 (pg/mL)'", "unit column" for "unit column of 'B12'"."""
    name = source.split(" '", 1)[0]
    return name.removesuffix(" of").removesuffix(" for")


def _strict(analyte: str, text: str, note: Note, fix: str) -> InputError:
    return InputError(
        f"{analyte} value '{text}': {note.summary} (refused under --strict)",
        field=analyte,
        value=text,
        fix=fix,
    )


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


# --- values without a unit, and values no laboratory reports ------------------------


def _shown(value: float, decimals: int) -> str:
    """A converted value as a message shows it: never a bare 0 for a value above zero."""
    text = format_number(value, decimals)
    return text if value == 0 or float(text) != 0 else f"{value:.2g}"


def _common_alternatives(ranges: Ranges, analyte: str) -> list[str]:
    """The analyte's common units, one per scale, the canonical unit's scale first."""
    spec = ranges.analytes[analyte]
    shown: list[str] = [spec.canonical_unit]
    factors = [1.0]
    for unit in spec.common_units:
        factor = ranges.units.factor(analyte, unit)
        if not any(math.isclose(factor, f) for f in factors):
            factors.append(factor)
            shown.append(unit)
    return shown[1:] or shown


def _reportable(ranges: Ranges, analyte: str, value: float) -> bool:
    spec = ranges.analytes[analyte]
    low = spec.reported_low if spec.reported_low is not None else spec.plausible_low
    high = spec.reported_high if spec.reported_high is not None else spec.plausible_high
    return value == 0 or low <= value <= high


def _reading(
    ranges: Ranges,
    analyte: str,
    value: float,
    guideline: str | None = None,
    sex: str | None = None,
) -> str:
    """What a value means, in the words a report uses: B12 status, else the flag."""
    limits = ranges.limits(sex, None, guideline)
    if analyte in ("b12", "holotc"):
        profile = limits.profile
        low, mid = (
            (profile.b12_deficient_below, profile.b12_borderline_below)
            if analyte == "b12"
            else (profile.holotc_deficient_below, profile.holotc_indeterminate_below)
        )
        if value < low.value:
            return "deficient"
        if value < mid.value:
            return "borderline"
    critical_low, critical_high = limits.critical_low(analyte), limits.critical_high(analyte)
    if critical_low is not None and value < critical_low:
        return "critically low"
    if critical_high is not None and value >= critical_high:
        return "critically high"
    low, high = limits.low(analyte), limits.high(analyte)
    if low is not None and value < low:
        return "low"
    if high is not None and value > high:
        return "high"
    return "normal"


_SEXES = (None, "female", "male")


def _readings(
    ranges: Ranges, analyte: str, value: float, guideline: str | None
) -> dict[str | None, str]:
    """The value's reading for a patient of either sex, or of none given (adults)."""
    return {sex: _reading(ranges, analyte, value, guideline, sex) for sex in _SEXES}


def bare_number_problem(
    ranges: Ranges,
    analyte: str,
    number: float,
    censored: str | None = None,
    guideline: str | None = None,
) -> str | None:
    """Why a number without a unit cannot be read in the canonical unit, or None.

    It can when no other common unit of the analyte reads it as a value
    laboratories report with another conclusion (another flag or B12 status, for a
    patient of either sex); the canonical reading must itself be one laboratories
    report.
    """
    spec = ranges.analytes[analyte]
    if not spec.plausible_low <= number <= spec.plausible_high:
        return None  # refused as implausible, with the likely units, when read
    canonical = number
    shown = format_number(number, 6)
    others = []
    for unit in spec.common_units:
        factor = ranges.units.factor(analyte, unit)
        if math.isclose(factor, 1.0) or any(math.isclose(factor, f) for _, f, _ in others):
            continue
        value = to_canonical(number, factor)
        if _reportable(ranges, analyte, value):
            others.append((unit, factor, value))
    if not others:
        return None
    if not censored and not _reportable(ranges, analyte, canonical):
        unit, _, value = others[0]
        return (
            f"{shown} {spec.canonical_unit} is not a value laboratories report; "
            f"{shown} {unit} = {_shown(value, max(spec.decimals, 1))} {spec.canonical_unit} "
            f"is {_reading(ranges, analyte, value, guideline)}"
        )
    canonical_readings = _readings(ranges, analyte, canonical, guideline)
    for unit, _, value in others:
        other_readings = _readings(ranges, analyte, value, guideline)
        differs = [sex for sex in _SEXES if other_readings[sex] != canonical_readings[sex]]
        if not differs:
            continue
        sex = differs[0]
        patient = f" for a {sex} patient" if sex else ""
        return (
            f"{shown} {unit} = {_shown(value, max(spec.decimals, 1))} {spec.canonical_unit} "
            f"is {other_readings[sex]}{patient}, {shown} {spec.canonical_unit} is "
            f"{canonical_readings[sex]}{patient}"
        )
    return None


def _unusual_unit(
    ranges: Ranges, analyte: str, unit: str, factor: float, value: float
) -> Note | None:
    """A unit of the right kind whose scale none of the analyte's usual units has
    (B12 in ng/dL, a hundred times ng/L): read as it says, and said, since a slip of
    one letter in such a unit moves the value a hundredfold."""
    if any(math.isclose(factor, scale) for scale in _usual_scales(ranges, analyte)):
        return None
    spec = ranges.analytes[analyte]
    return Note(
        UNIT_UNUSUAL,
        analyte,
        f"unusual unit {unit[:20]}",
        f"{analyte}: '{unit[:20]}' is not a unit laboratories report {analyte} in (usually "
        f"{', '.join(spec.common_units[:3])}); read as {format_number(value, spec.decimals)} "
        f"{spec.canonical_unit}: check the unit",
    )


def _unreported(ranges: Ranges, analyte: str, shown_input: str, value: float) -> Note:
    """A value in the canonical unit beyond what laboratories report (B12 0.5 pmol/L, below
    any assay's measuring range): no other unit explains it, so it is read as written,
    and said, since a slip of the decimal point or the unit would also give it."""
    spec = ranges.analytes[analyte]
    low = spec.reported_low if spec.reported_low is not None else spec.plausible_low
    high = spec.reported_high if spec.reported_high is not None else spec.plausible_high
    side, limit = ("below", low) if value < low else ("above", high)
    where = "lowest" if side == "below" else "highest"
    bound = f"{format_number(limit, 6)} {spec.canonical_unit}"
    return Note(
        UNREPORTED,
        analyte,
        f"{side} what laboratories report",
        f"{analyte}: {shown_input[:40]} is {side} the {where} result laboratories report "
        f"({bound}); read as written: check the value and its unit",
    )


@lru_cache(maxsize=64)
def _usual_scales(ranges: Ranges, analyte: str) -> tuple[float, ...]:
    """The factors of the canonical unit and of the analyte's usual units, once each."""
    units = ranges.analytes[analyte].common_units
    return tuple(dict.fromkeys((1.0, *(ranges.units.factor(analyte, u) for u in units))))


def _check_reported(
    ranges: Ranges, analyte: str, reading: Reading, unit: str, value: float
) -> None:
    """A value in a unit that makes it one no laboratory reports (ferritin 45 ng/dL)."""
    if reading.censored or _reportable(ranges, analyte, value):
        return
    spec = ranges.analytes[analyte]
    number = format_number(reading.number, 6)
    numerator = spelling_numerator(unit)
    candidates = sorted(
        dict.fromkeys((*spec.common_units, spec.canonical_unit)),
        key=lambda s: spelling_numerator(s) != numerator,  # `45 ng/dl` -> ng/mL first
    )
    likely: list[tuple[str, float]] = []
    for spelling in candidates:
        other = to_canonical(reading.number, ranges.units.factor(analyte, spelling))
        if _reportable(ranges, analyte, other) and not any(
            math.isclose(other, v) for _, v in likely
        ):
            likely.append((spelling, other))
    fix = (
        "did you mean "
        + " or ".join(
            f"{number} {s} (= {format_number(v, spec.decimals)} {spec.canonical_unit})"
            for s, v in likely[:2]
        )
        + "?"
        if likely
        else "check the value and its unit"
    )
    low = format_number(spec.reported_low or spec.plausible_low, 6)
    high = format_number(spec.reported_high or spec.plausible_high, 6)
    raise UnreportedValueError(
        f"{analyte} value {number} {unit} = {_shown(value, max(spec.decimals, 2))} "
        f"{spec.canonical_unit} is not a plausible result (laboratories report "
        f"{low}-{high} {spec.canonical_unit})",
        field=analyte,
        value=f"{number} {unit}",
        fix=fix,
    )


def spelling_numerator(unit: str) -> str:
    """`ng` for `ng/dl`: what a unit measures, case ignored, before its volume."""
    return unit.split("/", 1)[0].strip().casefold().replace("µ", "u").replace("mc", "u")
