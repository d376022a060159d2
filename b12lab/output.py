"""Output files that never destroy anything.

- A regular file (or a new one) is written to a temporary file beside it and
  renamed over it only when the run completes; the file it replaces keeps its
  permission bits, a new file gets 0o666 less the umask.
- A target that is not a regular file (a FIFO, a device such as /dev/null, or
  a descriptor link such as /dev/stdout) is opened and written in place: it is
  never replaced.
- `check_targets` refuses, before anything is read, an output that names the
  input or another output.
- `interrupt_guard` turns SIGTERM, SIGHUP and SIGINT into `Interrupted`, which
  unwinds through the open outputs: temporary files are removed and the
  previous output stays as it was.
- A failed write is a `WriteError` naming the target, never mistaken for a
  problem with the input.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from b12lab.errors import B12labError, InputError

_FD_LINK_DIRS = ("/dev/", "/proc/")
_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGINT") if hasattr(signal, name)
)
_OPEN: list[AtomicOutput] = []  # outputs being written, for the interruption message


class WriteError(B12labError):
    """An output could not be written (disk full, permissions, a closed stream)."""


class Interrupted(BaseException):  # like KeyboardInterrupt: not caught as an Exception
    """A terminating signal arrived; the outputs being written are abandoned."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def message(self) -> str:
        name = signal.Signals(self.signum).name
        files = [str(o.path) for o in _OPEN if o.path is not None]
        _OPEN.clear()
        if not files:
            return f"interrupted by {name}"
        if len(files) == 1:
            return f"interrupted by {name}; {files[0]} left as it was"
        return f"interrupted by {name}; {' and '.join(files)} left as they were"


_PENDING: list[int] = []  # the signal that arrived, until the run has ended


def pending_signal() -> int | None:
    """The terminating signal that arrived inside `interrupt_guard`, if one did."""
    return _PENDING[0] if _PENDING else None


def check_interrupted() -> None:
    """Raise Interrupted again if a signal arrived and its exception was swallowed.

    A signal's exception can surface inside a library that catches it (an import
    run lazily by pyarrow, a C extension's callback); the run must still stop,
    and no output may be completed after it.
    """
    if _PENDING:
        raise Interrupted(_PENDING[0])


@contextlib.contextmanager
def interrupt_guard() -> Iterator[None]:
    """SIGTERM/SIGHUP/SIGINT raise Interrupted inside the block (main thread only)."""

    def handler(signum, frame):
        if _PENDING:  # a second signal must not cut the clean-up short
            return
        _PENDING.append(signum)
        raise Interrupted(signum)

    _PENDING.clear()
    previous = {}
    try:
        for number in _SIGNALS:
            previous[number] = signal.signal(number, handler)
    except ValueError:  # not the main thread: leave signals alone
        previous = {}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def _identity(path: str) -> tuple:
    """What two names of one file share: (device, inode) if it exists, else its real path."""
    try:
        info = os.stat(path)
        return ("inode", info.st_dev, info.st_ino, stat.S_ISCHR(info.st_mode))
    except OSError:
        return ("path", os.path.realpath(path), False)


def _stream_identity(stream) -> tuple | None:
    try:
        info = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    return ("inode", info.st_dev, info.st_ino, stat.S_ISCHR(info.st_mode))


def check_targets(
    inputs: Iterable[tuple[str, str | None]], outputs: Iterable[tuple[str, str | None]]
):
    """Refuse an output that names an input, or another output, before anything is read.

    `inputs` and `outputs` are (what, path) pairs; `-` is stdin for an input,
    stdout for an output; None is "not given" (an output of None is stdout).
    Character devices (/dev/null, a terminal) may be shared by outputs.
    """
    seen: list[tuple[tuple, str, bool]] = []  # (identity, description, is_input)
    for what, path in inputs:
        if path is None:
            continue
        identity = _stream_identity(sys.stdin) if path == "-" else _identity(path)
        if identity is not None and identity[-1] is not True:
            seen.append((identity, f"{what} {'standard input' if path == '-' else path}", True))
    for what, path in outputs:
        to_stdout = path in (None, "-")
        identity = _stream_identity(sys.stdout) if to_stdout else _identity(path)
        description = f"{what} {'standard output' if to_stdout else path}"
        shareable = identity is not None and identity[-1] is True  # /dev/null, a terminal
        for other, other_description, _ in seen:
            both_stdout = to_stdout and other == ("stdout",)
            same = both_stdout or (identity is not None and identity == other)
            if both_stdout:
                raise InputError(
                    f"{what} '-' would mix its rows into the data on standard output",
                    fix="give it a file name, or write the data elsewhere with -o FILE",
                )
            if same and not shareable:
                raise InputError(
                    f"{description} is the same file as the {other_description}",
                    fix="write each output to a file of its own, never over the input",
                )
        if identity is not None:
            seen.append((identity, description, False))
        if to_stdout:
            seen.append((("stdout",), description, False))


class _Guarded:
    """A text stream whose failed writes become a WriteError naming the target."""

    def __init__(self, stream: TextIO, what: str, target: str, utf8_buffer=None):
        self._stream = stream
        self._what = what
        self._target = target
        # The binary buffer under `stream` where UTF-8 bytes are the text they encode
        # (a UTF-8 text stream that changes no line end), else None.
        self._utf8_buffer = utf8_buffer

    def _failed(self, error: OSError) -> WriteError:
        return WriteError(
            f"cannot write {self._what} {self._target}: {error.strerror or error}",
            fix="free space on the disk or choose another output",
        )

    def write(self, text: str) -> int:
        if _PENDING:
            check_interrupted()
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as error:
            raise self._failed(error) from None

    def write_utf8(self, data) -> None:
        """Text given as UTF-8 bytes: straight to the binary buffer under the text
        stream (after what the stream holds) where that writes the same bytes, decoded
        and written as text otherwise (a StringIO, another encoding)."""
        if self._utf8_buffer is None:
            self.write(str(data, "utf-8"))
            return
        if _PENDING:
            check_interrupted()
        try:
            self._stream.flush()
            self._utf8_buffer.write(data)
        except BrokenPipeError:
            raise
        except OSError as error:
            raise self._failed(error) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as error:
            raise self._failed(error) from None

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _utf8_buffer(stream):
    """The binary buffer of a UTF-8 text stream whose line ends are written as they are
    (opened with newline="", or translating "\n" to a line separator that is "\n")."""
    import codecs
    import io

    if not isinstance(stream, io.TextIOWrapper):
        return None
    try:
        if codecs.lookup(stream.encoding).name != "utf-8":
            return None
    except LookupError:
        return None
    return getattr(stream, "buffer", None)


def _umask() -> int:
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


class AtomicOutput:
    """`with AtomicOutput(path) as stream:` writes `path` only if the block completes.

    `-` (or None) is stdout, written directly; so is any target that is not a
    regular file (see the module text). With `binary`, the stream takes bytes (a
    binary format such as Parquet, never written to stdout: refused before).
    """

    def __init__(self, path: str | None, what: str = "output", *, binary: bool = False):
        self.path = None if path in (None, "-") else Path(path)
        self.what = what
        self.binary = binary
        self._temp: str | None = None
        self._final: Path | None = None
        self._mode = 0o644
        self._raw: TextIO | None = None
        self.stream: TextIO | None = None

    def __enter__(self) -> TextIO:
        if self.path is None:
            # Python's own standard output translates "\n" to the line separator.
            plain = sys.stdout is sys.__stdout__ and os.linesep == "\n"
            buffer = _utf8_buffer(sys.stdout) if plain else None
            self.stream = _Guarded(sys.stdout, self.what, "standard output", buffer)  # type: ignore[assignment]
            return self.stream  # type: ignore[return-value]
        _OPEN.append(self)
        try:
            self._raw = self._open()
        except BaseException:
            _OPEN.remove(self)
            raise
        buffer = None if self.binary else _utf8_buffer(self._raw)  # opened with newline=""
        self.stream = _Guarded(self._raw, self.what, str(self.path), buffer)  # type: ignore[assignment]
        return self.stream  # type: ignore[return-value]

    def _refused(self, error: OSError) -> InputError:
        if isinstance(error, FileNotFoundError):
            return InputError(
                f"cannot write {self.what} {self.path}: the folder does not exist",
                fix="create the folder or choose another path",
            )
        if isinstance(error, PermissionError):
            return InputError(
                f"cannot write {self.what} {self.path}: permission denied",
                fix="choose a folder you can write to",
            )
        return InputError(f"cannot write {self.what} {self.path}: {error.strerror or error}")

    def _open(self) -> TextIO:
        assert self.path is not None
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            info = None
        except OSError as error:
            raise self._refused(error) from None
        if info is not None and stat.S_ISDIR(info.st_mode):
            raise InputError(f"{self.what} {self.path} is a directory", fix="give a file name")
        in_place = info is not None and not stat.S_ISREG(info.st_mode)
        if info is not None and self.path.is_symlink():
            in_place = in_place or str(self.path.absolute()).startswith(_FD_LINK_DIRS)
        if in_place:
            # A FIFO, a device or a descriptor link: write into it, never replace it.
            try:
                handle = os.open(self.path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOCTTY", 0))
            except OSError as error:
                raise self._refused(error) from None
            return self._fdopen(handle)
        final = Path(os.path.realpath(self.path))  # a symlink keeps pointing at the result
        self._final = final
        self._mode = stat.S_IMODE(info.st_mode) if info is not None else 0o666 & ~_umask()
        directory = final.parent
        try:
            import tempfile

            handle, self._temp = tempfile.mkstemp(
                prefix=f".{final.name}.", suffix=".tmp", dir=directory
            )
        except OSError as error:
            raise self._refused(error) from None
        return self._fdopen(handle)

    def _fdopen(self, handle: int):
        if self.binary:
            return os.fdopen(handle, "wb")
        return os.fdopen(handle, "w", encoding="utf-8", newline="")

    def __exit__(self, kind, error, traceback) -> None:
        if self.path is None:
            if kind is None:
                self.stream.flush()  # type: ignore[union-attr]
            return
        assert self._raw is not None
        if kind is None and _PENDING:  # never complete an output after a signal
            self.__exit__(Interrupted, None, None)
            check_interrupted()
        try:
            if kind is None:
                self.stream.flush()  # type: ignore[union-attr]
                if self._temp is not None:
                    os.fchmod(self._raw.fileno(), self._mode)
                    self._raw.close()
                    os.replace(self._temp, self._final)  # type: ignore[arg-type]
                    self._temp = None
            self._raw.close()
        except OSError as failure:
            if kind is None:
                raise WriteError(
                    f"cannot write {self.what} {self.path}: {failure.strerror or failure}",
                    fix="free space on the disk or choose another output",
                ) from None
        finally:
            if self._temp is not None:
                with contextlib.suppress(OSError):
                    self._raw.close()
                with contextlib.suppress(OSError):
                    os.unlink(self._temp)
            replaced_nothing = self._final is not None
            if kind is None or not issubclass(kind, Interrupted) or not replaced_nothing:
                with contextlib.suppress(ValueError):
                    _OPEN.remove(self)
