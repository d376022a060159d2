"""The one JSON reader: every JSON b12lab reads (panel files, FHIR JSON, each NDJSON line).

JSON is read as carefully as YAML (`inputs/yaml_text.py`):

- nesting deeper than `MAX_DEPTH` is refused before the parser runs, counted on
  the brackets outside strings in one linear pass, so Python's recursive
  decoder never meets a deep document;
- a document is at most `MAX_DOCUMENT_BYTES`, one NDJSON line at most
  `MAX_LINE_BYTES`; callers read at most one byte past the limit;
- a key given twice in one object is refused naming the key (JSON leaves the
  meaning open; Python would keep the last value silently);
- `NaN`, `Infinity` and `-Infinity`, which are not JSON, are refused.

The limits are about the size and shape of files, not clinical numbers.
"""

from __future__ import annotations

from array import array
from itertools import accumulate
from typing import IO, Any

from b12lab.errors import InputError

MAX_DEPTH = 64  # the same limit as YAML's
MAX_DOCUMENT_BYTES = 100 * 1024 * 1024  # one JSON document (a FHIR Bundle); NDJSON for more
MAX_LINE_BYTES = 8 * 1024 * 1024  # one NDJSON line (one resource)

# Every byte but brackets and quotes, deleted to find the structure.
_NOT_STRUCTURE = bytes(set(range(256)) - set(b'[]{}"'))
_FLATTER = f"give JSON nested at most {MAX_DEPTH} levels deep"
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


class JsonProblem(ValueError):
    """Why a text is not read as JSON: a sentence to put after 'is not valid JSON'."""

    def __init__(
        self,
        reason: str,
        line: int | None = None,
        *,
        fix: str | None = None,
        syntax: bool = False,
        encoding: bool = False,
    ):
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.fix = fix  # how to mend this problem, where it has a fix of its own
        self.syntax = syntax  # not JSON syntax at all (rather than JSON b12lab refuses)
        self.encoding = encoding  # not UTF-8 text


def _brackets(data: bytes) -> bytes:
    """The brackets of `data` outside strings, in order (a few passes in C, no recursion).

    Escaped backslashes, then escaped quotes, are dropped first, so every quote
    left opens or closes a string; an unterminated string runs to the end.
    """
    plain = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(plain.translate(None, _NOT_STRUCTURE).split(b'"')[0::2])


def nesting_depth(data: bytes) -> int:
    """How deeply arrays and objects nest in `data`, brackets inside strings not counted."""
    return max(accumulate(array("b", _brackets(data).translate(_STEPS))), default=0)


def parse_json(data: bytes | str, *, limit: int, numbers_as_text: bool = False) -> Any:
    """The JSON value in `data`, or JsonProblem saying why not.

    `numbers_as_text` keeps every number as it was written ('0.10' stays
    '0.10'), as a panel file's YAML does.
    """
    import json

    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > limit:
        raise JsonProblem(f"larger than {_size(limit)}", fix="split it into smaller files")
    if nesting_depth(raw) > MAX_DEPTH:
        raise JsonProblem(f"nested more than {MAX_DEPTH} levels deep", fix=_FLATTER)
    if isinstance(data, bytes):
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise JsonProblem(f"not UTF-8 (byte {error.start})", encoding=True) from None
    options: dict[str, Any] = {"object_pairs_hook": _object, "parse_constant": _constant}
    if numbers_as_text:
        options.update(parse_int=str, parse_float=str)
    try:
        return json.loads(data, **options)
    except JsonProblem:
        raise
    except RecursionError:  # not reached within MAX_DEPTH; kept as a last guard
        raise JsonProblem(f"nested more than {MAX_DEPTH} levels deep", fix=_FLATTER) from None
    except ValueError as error:
        line = getattr(error, "lineno", None)
        message = getattr(error, "msg", None) or str(error).split(":")[0]
        raise JsonProblem(message[:120], line, syntax=True) from None


def layout(head: bytes, *, complete: bool) -> str | None:
    """ "ndjson", "document", or None when `head` (the first bytes) does not tell.

    Told by structure, not by length: NDJSON is a first line that holds a whole
    value (its brackets close on it) followed by a line that starts another
    object. A first line whose brackets stay open is a document written over
    several lines; a file of one line is one document. `complete`: `head` is
    the whole file.
    """
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    newline = text.find(b"\n")
    if newline < 0:
        return "document" if complete else None
    if not closes_on_its_line(text[:newline]):
        return "document"
    rest = text[newline:].lstrip()
    if not rest:
        return "document" if complete else None
    return "ndjson" if rest.startswith(b"{") else "document"


def closes_on_its_line(line: bytes) -> bool:
    """True when every bracket opened on `line` (outside strings) is closed on it."""
    return sum(array("b", _brackets(line).translate(_STEPS))) == 0


def load_json(data: bytes | str, label: str, *, fix: str, limit: int, **options) -> Any:
    """`parse_json`, with a problem turned into one InputError naming `label`."""
    try:
        return parse_json(data, limit=limit, **options)
    except JsonProblem as problem:
        where = f" at line {problem.line}" if problem.line else ""
        raise InputError(
            f"{label} is not valid JSON{where}: {problem.reason}", fix=problem.fix or fix
        ) from None


def read_document(stream: IO[bytes], label: str, limit: int | None = None) -> bytes:
    """A whole JSON document from `stream`, reading at most one byte past `limit`."""
    limit = MAX_DOCUMENT_BYTES if limit is None else limit
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise InputError(
            f"{label} is a JSON document larger than {_size(limit)}",
            fix="give a large export as FHIR NDJSON (one resource per line)",
        )
    return data


def _object(pairs: list[tuple[str, Any]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise JsonProblem(
                    f"the key '{key[:40]}' is given twice in one object", fix="keep one of them"
                )
            seen.add(key)
    return result


def _constant(name: str) -> Any:
    raise JsonProblem(f"{name} is not a JSON number", fix="write a number, or leave the value out")


def _size(limit: int) -> str:
    if limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MiB"
    return f"{limit / 1_000_000:g} MB"
