"""Output files written atomically: a temporary file beside the target, then a rename.

An interrupted run never leaves a half-written result where a good one was.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from b12lab.errors import InputError


class AtomicOutput:
    """`with AtomicOutput(path) as stream:` writes `path` only if the block completes.

    `-` (or None) is stdout, written directly.
    """

    def __init__(self, path: str | None, what: str = "output"):
        self.path = None if path in (None, "-") else Path(path)
        self.what = what
        self._temp: str | None = None
        self.stream: TextIO | None = None

    def __enter__(self) -> TextIO:
        if self.path is None:
            self.stream = sys.stdout
            return self.stream
        if self.path.is_dir():
            raise InputError(f"{self.what} {self.path} is a directory", fix="give a file name")
        directory = self.path.parent if str(self.path.parent) else Path(".")
        try:
            handle, self._temp = tempfile.mkstemp(
                prefix=f".{self.path.name}.", suffix=".tmp", dir=directory
            )
        except FileNotFoundError:
            raise InputError(
                f"cannot write {self.what} {self.path}: the folder does not exist",
                fix="create the folder or choose another path",
            ) from None
        except PermissionError:
            raise InputError(
                f"cannot write {self.what} {self.path}: permission denied",
                fix="choose a folder you can write to",
            ) from None
        except OSError as error:
            raise InputError(f"cannot write {self.what} {self.path}: {error.strerror}") from None
        self.stream = os.fdopen(handle, "w", encoding="utf-8", newline="")
        return self.stream

    def __exit__(self, kind, error, traceback) -> None:
        if self.path is None:
            return
        assert self.stream is not None and self._temp is not None
        try:
            self.stream.close()
            if kind is None:
                os.replace(self._temp, self.path)
                self._temp = None
        except OSError as failure:
            if kind is None:
                raise InputError(
                    f"cannot write {self.what} {self.path}: {failure.strerror}",
                    fix="check free disk space and permissions",
                ) from None
        finally:
            if self._temp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self._temp)
