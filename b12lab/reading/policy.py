"""What the reading layer may assume, and how it reports what it did assume.

Every source (flags, panel files, CSV exports, Python rows, FHIR, HL7) reads
its cells with one `ReadPolicy`. Anything read other than exactly as written
(a unit assumed, a separator read by the file's convention, a derived value)
becomes a `Note` that reaches every output format; with `strict`, it becomes
an error instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

# How an ambiguous number such as `1.476` or `1,476` is read.
POINT = "."  # a dot is the decimal mark, a comma groups thousands (a US export)
COMMA = ","  # a comma is the decimal mark, a dot groups thousands (a `;` export with 1,5)
TYPED = "typed"  # typed input: a dot is the decimal mark, a comma groups thousands (noted)
UNKNOWN = None  # no convention is clear: an ambiguous number is refused, naming both readings
AUTO = "auto"  # an export's convention: found from the values of its first rows

DATE_ORDERS = ("dmy", "mdy", "ymd")

# Kinds of note. --strict refuses the assumptions among them (unit assumed,
# separator, derived value, unit conflict) where they are made.
UNIT_ASSUMED = "unit assumed"
SEPARATOR = "separator"
DERIVED = "derived"
UNIT_CONFLICT = "unit conflict"
UNIT_UNUSUAL = "unit unusual"  # a unit of the right kind that no laboratory reports it in
# A value in the analyte's canonical unit outside the range laboratories report (B12
# 0.5 pmol/L): read as written, and said.
UNREPORTED = "unreported"
CENSORED = "censored"
TEST_SKIPPED = "test skipped"
NO_DATE = "no date"  # no collection date anywhere in the source for a panel's results
# A test not read although it resembles an analyte (a close-but-different LOINC code,
# a display text naming an analyte, a name that nearly spells one): said in every record.
TEST_NOT_READ = "test not read"
PANEL_SPLIT = "panel split"
NO_RESULT = "no result"
CORRECTED = "corrected"  # a laboratory's correction replaced earlier results of its test
SEX_NOT_GIVEN = "sex not given"  # the source states a sex that is neither female nor male
PROVISIONAL = "provisional"  # the laboratory marks the result preliminary or unverified


class Note(NamedTuple):
    """One thing the reader did or assumed that the output must say.

    `subject` is the analyte or column it concerns, `summary` a short phrase
    that counts well ("no unit, read as pmol/L"), `message` the full sentence.
    """

    kind: str
    subject: str
    summary: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ReadPolicy:
    """One policy for every cell of one input.

    `decimal` is POINT, COMMA, TYPED or UNKNOWN (see above). `units` gives a
    unit to a column or analyte that has none (`--unit KEY=UNIT`; keys as
    `column_key` makes them). `date_order` comes from `--date-format`.
    """

    decimal: str | None = TYPED
    strict: bool = False
    units: Mapping[str, str] = field(default_factory=dict)
    date_order: str | None = None
    # The guideline profile in force: a number without a unit is judged ambiguous by
    # the conclusions this profile draws (None: the default profile).
    guideline: str | None = None

    def __hash__(self) -> int:
        return hash(
            (
                self.decimal,
                self.strict,
                tuple(sorted(self.units.items())),
                self.date_order,
                self.guideline,
            )
        )
