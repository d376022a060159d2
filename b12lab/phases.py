"""What a long run is doing now, told to the progress display.

A batch run reads, may check or group its rows out of core, and writes; each
phase reports its own name and progress here, and the display (if any) shows
it, so that no phase sits behind a bar already at 100%. Without a display
every call is a no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol


class Display(Protocol):
    def phase(self, name: str, total: int | None, position: Callable[[], int] | None) -> None: ...

    def tick(self, done: int | None = None) -> None: ...

    def restore(self) -> None: ...


_DISPLAY: list[Display] = []


@contextmanager
def shown_on(display: Display) -> Iterator[None]:
    """Phases started inside the block are shown on `display`."""
    _DISPLAY.append(display)
    try:
        yield
    finally:
        _DISPLAY.remove(display)


def phase(name: str, total: int | None = None, position: Callable[[], int] | None = None):
    """A new phase: `total` steps (None: counted, not measured); `position()`, when given,
    tells how far it is at each tick."""
    if _DISPLAY:
        _DISPLAY[-1].phase(name, total, position)


def tick(done: int | None = None) -> None:
    """The current phase has progressed (to `done` steps, or by its `position`)."""
    if _DISPLAY:
        _DISPLAY[-1].tick(done)


def restore() -> None:
    """Back to the phase the run started with, after a first pass over the input."""
    if _DISPLAY:
        _DISPLAY[-1].restore()
