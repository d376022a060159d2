"""The exceptions b12lab raises for bad input.

The library raises; the CLI alone turns an exception into one line on stderr
and an exit code. Every message names the offending value and the fix.
"""

from __future__ import annotations


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
