"""Patient fields shared by flags, panel files and CSV exports: sex, age, dates, yes/no."""

from __future__ import annotations

import datetime as dt
import math
import re

from b12lab.errors import InputError, option
from b12lab.reading.policy import DATE_ORDERS

SEX_WORDS = {
    "female": "female",
    "f": "female",
    "woman": "female",
    "w": "female",
    "male": "male",
    "m": "male",
    "man": "male",
}
TRUE_WORDS = {"true", "yes", "y", "1", "on"}
FALSE_WORDS = {"false", "no", "n", "0", "off", ""}
MAX_AGE = 130
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](.*))?$")
_TIME = re.compile(
    r"^(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:\.\d+)?)?"
    r"\s*(?P<zone>[Zz]|[+-]\d{2}:?\d{2})?$"
)
_HL7_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:\d{2,6}(?:\.\d+)?)?(?:[+-]\d{4})?$")
_DOT_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})(?: \d{1,2}:\d{2}(?::\d{2})?)?$")
_SLASH_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?: \d{1,2}:\d{2}(?::\d{2})?)?$")


def _blank(value: object) -> bool:
    """Nothing given: no value, or only spaces."""
    return value is None or (isinstance(value, str) and not value.strip())


# A sex a source states as other, unknown, ambiguous or not applicable (HL7 table 0001
# O, U, A, N; FHIR other, unknown): read as not given, with a note, never as an error.
SEX_NOT_STATED = frozenset({"other", "unknown", "o", "u", "a", "n"})


def sex_not_stated(value: object) -> bool:
    return isinstance(value, str) and value.strip().casefold() in SEX_NOT_STATED


def parse_sex(value: object, field: str = "sex") -> str | None:
    if _blank(value):
        return None
    word = str(value).strip().casefold()
    if word in SEX_WORDS:
        return SEX_WORDS[word]
    raise InputError(
        f"{field} '{str(value)[:30]}' is not understood",
        field=field,
        value=str(value),
        fix="use female or male (f/m accepted)",
    )


def parse_age(value: object, field: str = "age") -> float | None:
    if _blank(value):
        return None
    if isinstance(value, bool):
        raise InputError(
            f"{field} must be a number of years",
            field=field,
            value=str(value),
            fix=f"e.g. {field} 54" if field.startswith("--") else "give the age in years, e.g. 54",
        )
    try:
        age = float(str(value).strip().replace(",", "."))
    except ValueError:
        raise InputError(
            f"{field} '{str(value)[:30]}' is not a number of years",
            field=field,
            value=str(value),
            fix=f"e.g. {field} 54" if field.startswith("--") else "give the age in years, e.g. 54",
        ) from None
    if not math.isfinite(age) or not 0 <= age <= MAX_AGE:
        raise InputError(
            f"{field} {str(value)[:30]} is outside 0-{MAX_AGE} years",
            field=field,
            value=str(value),
            fix="give the age in years",
        )
    return age


def parse_date_format(text: str | None) -> str | None:
    """`--date-format` as a day/month/year order: DD/MM/YYYY, MM/DD/YYYY, YYYY-MM-DD, %d/%m/%Y."""
    if text is None:
        return None
    order = "".join(ch for ch in text.lower().replace("%", "") if ch in "dmy")
    order = "".join(dict.fromkeys(order))
    if order not in DATE_ORDERS:
        raise InputError(
            f"{option('--date-format', text[:30], quoted=True)} is not a date layout",
            field=option("--date-format"),
            value=text,
            fix="use DD/MM/YYYY, MM/DD/YYYY or YYYY-MM-DD",
        )
    return order


def _time_ok(rest: str) -> bool:
    """The part after an ISO date: a real time of day and zone, or nothing."""
    if not rest:
        return True
    match = _TIME.match(rest)
    if not match:
        return False
    hour, minute, second = (int(g) if g else 0 for g in match.group("h", "m", "s"))
    if hour > 23 or minute > 59 or second > 60:
        return False
    zone = match.group("zone")
    if zone and zone not in ("Z", "z"):
        zone_hours, zone_minutes = int(zone[1:3]), int(zone[-2:])
        if zone_hours > 14 or zone_minutes > 59:
            return False
    return True


def parse_date(value: object, field: str = "date", order: str | None = None) -> dt.date | None:
    """A collection or birth date, read only when its day and month are certain.

    ISO dates (2026-11-20, with or without a valid time), HL7 dates
    (20261120, 202611200830), day.month.year with dots; slash dates when only
    one order gives a real date (15/03/2026) or with `order` (--date-format).
    `03/04/2026` without an order is refused, naming both readings.
    """
    if _blank(value):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    parts = None
    if match := _ISO_DATE.match(text):
        if not _time_ok(match.group(4)):
            raise InputError(
                f"{field} '{text[:40]}' has an impossible time or zone",
                field=field,
                value=text,
                fix="write the date as YYYY-MM-DD (a time, if given, as HH:MM)",
            )
        parts = (int(match.group(1)), int(match.group(2)), int(match.group(3)))
    elif match := _HL7_DATE.match(text):
        parts = (int(match.group(1)), int(match.group(2)), int(match.group(3)))
    elif match := _DOT_DATE.match(text):
        parts = (int(match.group(3)), int(match.group(2)), int(match.group(1)))
    elif match := _SLASH_DATE.match(text):
        parts = _slash_date(text, field, match, order)
    if parts is None:
        raise InputError(
            f"{field} '{text[:30]}' is not a date",
            field=field,
            value=text,
            fix="write it as YYYY-MM-DD, e.g. 2026-11-20",
        )
    try:
        return dt.date(*parts)
    except (ValueError, OverflowError):
        raise InputError(
            f"{field} '{text[:30]}' does not exist",
            field=field,
            value=text,
            fix="check the day and month (YYYY-MM-DD)",
        ) from None


def _slash_date(text: str, field: str, match: re.Match, order: str | None) -> tuple[int, ...]:
    first, second, year = (int(g) for g in match.groups())
    if order == "dmy" or (order is None and first > 12 >= second):
        return (year, second, first)
    if order == "mdy" or (order is None and second > 12 >= first):
        return (year, first, second)
    if order is None and first == second:
        return (year, first, second)
    if order == "ymd":
        raise InputError(
            f"{field} '{text[:30]}' is not in the --date-format given (YYYY-MM-DD)",
            field=field,
            value=text,
            fix="check --date-format",
        )
    raise InputError(
        f"{field} '{text[:30]}' is ambiguous: {_month_name(second)} {first} or "
        f"{_month_name(first)} {second}, {year}",
        field=field,
        value=text,
        fix="give --date-format DD/MM/YYYY or MM/DD/YYYY, or write the date as YYYY-MM-DD",
    )


def _month_name(month: int) -> str:
    return dt.date(2000, month, 1).strftime("%B") if 1 <= month <= 12 else f"month {month}"


def parse_flag(value: object, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    word = str(value).strip().casefold()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise InputError(
        f"{field} '{str(value)[:30]}' is not yes or no",
        field=field,
        value=str(value),
        fix="use true or false",
    )


ALCOHOL_CURRENT = {"current"}
ALCOHOL_STOPPED = {"stopped"}


def parse_alcohol(value: object, field: str = "alcohol_use") -> tuple[bool, bool]:
    """Alcohol use as (current, stopped): true/yes/current is heavy use now, stopped is
    heavy use recently stopped, false/no/blank is neither."""
    if isinstance(value, str) and value.strip().casefold() in ALCOHOL_CURRENT:
        return True, False
    if isinstance(value, str) and value.strip().casefold() in ALCOHOL_STOPPED:
        return False, True
    if (
        value is None
        or isinstance(value, bool)
        or str(value).strip().casefold() in (TRUE_WORDS | FALSE_WORDS)
    ):
        return parse_flag(value, field), False
    raise InputError(
        f"{field} '{str(value)[:30]}' is not current, stopped, yes or no",
        field=field,
        value=str(value),
        fix="use current (or true) for heavy use now, stopped for heavy use recently stopped, "
        "or false",
    )


def parse_days(value: object, field: str = "days_on_therapy") -> int | None:
    if _blank(value):
        return None
    try:
        days = int(str(value).strip())
    except ValueError:
        raise InputError(
            f"{field} '{str(value)[:30]}' is not a whole number of days",
            field=field,
            value=str(value),
            fix="e.g. 14",
        ) from None
    if not 0 <= days <= 36500:
        raise InputError(
            f"{field} {days} is out of range",
            field=field,
            value=str(days),
            fix="give the days since B12 therapy started",
        )
    return days
