"""Patient fields shared by flags, panel files and CSV exports: sex, age, dates, yes/no."""

from __future__ import annotations

import datetime as dt
import math
import re

from b12lab.errors import InputError

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
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ].*)?$")
_DMY_DATE = re.compile(r"^(\d{1,2})[./](\d{1,2})[./](\d{4})(?: .*)?$")


def _blank(value: object) -> bool:
    """Nothing given: no value, or only spaces."""
    return value is None or (isinstance(value, str) and not value.strip())


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
            f"{field} must be a number of years", field=field, value=str(value), fix="e.g. --age 54"
        )
    try:
        age = float(str(value).strip().replace(",", "."))
    except ValueError:
        raise InputError(
            f"{field} '{str(value)[:30]}' is not a number of years",
            field=field,
            value=str(value),
            fix="e.g. --age 54",
        ) from None
    if not math.isfinite(age) or not 0 <= age <= MAX_AGE:
        raise InputError(
            f"{field} {str(value)[:30]} is outside 0-{MAX_AGE} years",
            field=field,
            value=str(value),
            fix="give the age in years",
        )
    return age


def parse_date(value: object, field: str = "date") -> dt.date | None:
    """ISO dates (2026-11-20, with or without a time) and day.month.year."""
    if _blank(value):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    match = _ISO_DATE.match(text)
    parts = None
    if match:
        parts = (int(match.group(1)), int(match.group(2)), int(match.group(3)))
    else:
        match = _DMY_DATE.match(text)
        if match:
            parts = (int(match.group(3)), int(match.group(2)), int(match.group(1)))
    if parts is None:
        raise InputError(
            f"{field} '{text[:30]}' is not a date",
            field=field,
            value=text,
            fix="write it as YYYY-MM-DD, e.g. 2026-11-20",
        )
    try:
        return dt.date(*parts)
    except ValueError:
        raise InputError(
            f"{field} '{text[:30]}' does not exist",
            field=field,
            value=text,
            fix="check the day and month (YYYY-MM-DD)",
        ) from None


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
