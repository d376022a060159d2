"""The pregnancy trimester a clinician gives: 1, 2 or 3."""

from __future__ import annotations

from b12lab.errors import InputError

TRIMESTERS = (1, 2, 3)


def parse_trimester(value: object, where: str = "pregnancy_trimester") -> int | None:
    """1, 2 or 3 (as a number or text); None when not given."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip()
    if isinstance(value, bool) or text not in {str(t) for t in TRIMESTERS}:
        raise InputError(
            f"{where}: '{text[:20]}' is not a pregnancy trimester",
            field=where,
            value=text[:20],
            fix="give 1, 2 or 3",
        )
    return int(text)


def check_pregnancy(sex: str | None, trimester: int | None) -> None:
    """A pregnancy trimester for a male patient is a mistake in the input."""
    if trimester is not None and sex == "male":
        raise InputError(
            "a pregnancy trimester was given for a male patient",
            field="pregnancy_trimester",
            fix="check the patient's sex and the pregnancy trimester",
        )
