"""The exceptions b12lab raises for bad input.

The library raises; the CLI alone turns an exception into one line on stderr
and an exit code. Every message names the offending value and the fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class B12labError(Exception):
    """Base class: a problem the user can fix by changing the input."""

    exit_code = 2

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message}; {self.fix}" if self.fix else self.message


class InputError(B12labError):
    """A value, unit, analyte, flag or file that cannot be read as given."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        value: str | None = None,
        fix: str | None = None,
    ) -> None:
        super().__init__(message, fix=fix)
        self.field = field
        self.value = value


class UnitError(InputError):
    """A unit that is unknown, or not one the analyte accepts."""


class AmbiguousValueError(InputError):
    """A number without a unit that another common unit would read with another conclusion."""


class ImplausibleValueError(InputError):
    """A value outside what the analyte can physically be, usually a unit slip."""


class UnreportedValueError(ImplausibleValueError):
    """A value its unit converts to one no laboratory reports (ferritin 45 ng/dL)."""


class RangesError(B12labError):
    """A reference ranges file (or overlay) that is malformed; `path` is the key path."""

    def __init__(self, path: str, problem: str, *, source: str | None = None) -> None:
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{path}: {problem}")
        self.path = path
        self.problem = problem


# --- how a message names an option ---------------------------------------------------
# The command line takes options as flags (--map 'Vit B12=b12'); the table functions
# (`b12lab.batch.table`) take the same options as keyword arguments
# (mapping={'Vit B12': 'b12'}). A message that tells its reader to give an option names
# it through `option`, so that each reader is told what they can type: flags unless
# the table functions are running (`keyword_wording`).

_PAIRS, _NAMES, _SWITCH, _TEXT = "pairs", "names", "switch", "text"
_KEYWORDS = {  # flag: (keyword, how its value is written)
    "--map": ("mapping", _PAIRS),
    "--unit": ("units", _PAIRS),
    "--keep": ("keep", _NAMES),
    "--timeline": ("timeline", _SWITCH),
    "--strict": ("strict", _SWITCH),
    "--layout": ("layout", _TEXT),
    "--date-format": ("date_format", _TEXT),
    "--decimal": ("decimal", _TEXT),
    "--ranges": ("ranges", _TEXT),
    "--rules": ("rules", _TEXT),
    "--guideline": ("guideline", _TEXT),
    "--as-of": ("as_of", _TEXT),
}
_BY_KEYWORD: ContextVar[bool] = ContextVar("b12lab_options_by_keyword", default=False)


def option(flag: str, value: str | None = None, *, quoted: bool = False) -> str:
    """An option as the reader of a message gives it: `--map 'Vit B12=b12'` on the
    command line, `mapping={'Vit B12': 'b12'}` to a table function. `value` is written
    as the command line takes it (KEY=VALUE for --map and --unit, COL,COL for --keep);
    `quoted` puts it in quotes on the command line. Without a value, the option's name."""
    if not _BY_KEYWORD.get():
        if value is None:
            return flag
        return f"{flag} '{value}'" if quoted else f"{flag} {value}"
    keyword, shape = _KEYWORDS[flag]
    if shape == _SWITCH:
        return f"{keyword}=True"
    if value is None:
        return keyword
    if shape == _PAIRS:
        key, _, given = value.partition("=")
        return f"{keyword}={ {key: given}!r}"
    if shape == _NAMES:
        return f"{keyword}={[name.strip() for name in value.split(',')]!r}"
    return f"{keyword}={value!r}"


@contextmanager
def keyword_wording() -> Iterator[None]:
    """Within it, messages name options as keyword arguments (see `option`)."""
    token = _BY_KEYWORD.set(True)
    try:
        yield
    finally:
        _BY_KEYWORD.reset(token)
