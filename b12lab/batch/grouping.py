"""Rows of an export brought into group order, whatever their order in the file.

A long export has one row per result: a panel is the rows of one patient,
collection date and accession. `--timeline` makes one record of a patient's
panels, in a wide export as in a long one. Rows of a group need not be adjacent
in the file; `arrange` hands them on so that every group's rows are contiguous:

- groups in the order of their first row; with `--timeline`, patients in the
  order of their first row and, within a patient, panels in the order of
  their first row (the timeline itself puts them in date order);
- the rows of a group in input order;
- a row that could not be read as CSV is a group of its own, at its place.

Line numbers travel with the rows, so records and errors name the lines of
the file. Memory is bounded whatever the size of the export:

1. **Already grouped: streamed.** At every level (patient, panel), the rows
   of one key are contiguous: a key that has ended never comes back. A first
   pass reads the file for this (`file_is_grouped`); the keys that have ended
   are remembered in a fixed Bloom filter of `FILTER_BYTES`, so the check
   holds no more than that whatever the number of keys. A filter can wrongly
   believe it has seen a key (for fewer than a million keys, less than once
   in a million), never the reverse, so a mistake only sends a
   grouped export down the out-of-core path, which gives the same records.
   The rows are then streamed: one panel (one patient with `--timeline`) is
   held at a time, beside the 2,000-row sample that finds the decimal mark.
   Rows that can be read only once (standard input, a pipe) are first
   spooled to a file in a private temporary directory while they are checked.
2. **At most `IN_MEMORY_ROWS` rows, not grouped: ordered in memory.**
3. **Otherwise: out of core.** The rows are spooled (Arrow record batches of
   `BATCH_ROWS`: input position, the key of each level as a 128-bit digest,
   the row) to a private temporary directory, removed afterwards, also after
   an error or an interruption. DuckDB, with `SET memory_limit` (256MB by
   default, `B12LAB_GROUP_MEMORY` to change it, at least 16MB), one thread
   and `SET temp_directory` in that directory, sorts positions and digests
   only: once per level by (key, position), which gives each group's first
   row, and once by (first rows, position), which gives each row its place.
   Those sorts spill to disk; the rows themselves never pass through DuckDB
   (sorting long rows needs memory in proportion to their width). They are
   dealt out, in input order, to bucket files of consecutive places of about
   a quarter of the memory limit each, and each bucket is put in order in
   memory and handed on.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import pickle
import re
import tempfile
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from b12lab import phases
from b12lab.errors import B12labError

if TYPE_CHECKING:
    from b12lab.reading.columns import ColumnPlan

Row = tuple[int, Sequence[object] | None, str | None]
KeyFunction = Callable[[Row], Hashable]

MEMORY_ENV = "B12LAB_GROUP_MEMORY"
DEFAULT_MEMORY = "256MB"
MIN_MEMORY = 16 * 10**6  # DuckDB, one thread, sorting keys of 16-byte digests
IN_MEMORY_ROWS = 10_000  # an export of at most this many rows is ordered in memory
BATCH_ROWS = 10_000  # rows per Arrow record batch, into and out of DuckDB
FILTER_BYTES = 8 * 2**20  # the Bloom filter of keys that have ended
FILTER_HASHES = 6
ROW_OVERHEAD = 160  # bytes Python adds to a pickled row held for ordering (tuple, int, bytes)

_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)\s*$", re.IGNORECASE)


PROGRESS_EVERY = 2000  # rows between two updates of the progress display


class GroupingError(B12labError):
    """Grouping could not run within its memory limit or temporary directory."""


@dataclass(frozen=True)
class GroupSettings:
    memory: str = DEFAULT_MEMORY  # as given, for messages
    memory_bytes: int = 256 * 10**6
    in_memory_rows: int = IN_MEMORY_ROWS
    temp_dir: str | None = None  # None: the system's (TMPDIR)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> GroupSettings:
        text = (environ if environ is not None else os.environ).get(MEMORY_ENV, "").strip()
        if not text:
            return cls()
        return cls(memory=text, memory_bytes=parse_memory(text))


def parse_memory(text: str) -> int:
    """`256MB`, `1GiB`, `64 MiB` -> bytes; refused below MIN_MEMORY."""
    match = _SIZE.match(text)
    if match is None:
        raise GroupingError(
            f"{MEMORY_ENV}={text!r} is not a memory size",
            fix=f"give a size such as {DEFAULT_MEMORY}, 512MiB or 1GB",
        )
    amount = float(match.group(1)) * _UNITS[match.group(2).lower()]
    most = _machine_memory()
    if not amount <= most:  # also an amount too large to be a number (inf)
        raise GroupingError(
            f"{MEMORY_ENV}={text[:40]} is more than this machine's memory ({most / 10**9:.1f} GB)",
            fix=f"give a size such as {DEFAULT_MEMORY}, 512MiB or 1GB",
        )
    size = int(amount)
    if size < MIN_MEMORY:
        raise GroupingError(
            f"{MEMORY_ENV}={text} is below 16MB, the least DuckDB needs to sort the keys",
            fix=f"set {MEMORY_ENV} to 16MB or more",
        )
    return size


def _machine_memory() -> int:
    """The machine's physical memory in bytes (1 TiB where the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return 2**40


class CheckedRows:
    """Rows whose grouping a first pass over the file has already checked."""

    def __init__(self, rows: Iterable[Row], grouped: bool):
        self.rows = rows
        self.grouped = grouped

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)


# --- what groups rows ---------------------------------------------------------------


def patient_key(raw: object) -> str:
    """The patient id as `PanelBuilder.set_patient_id` reads it ("" when missing)."""
    from b12lab.reading.values import cell_text, is_missing

    if raw is None or is_missing(raw):
        return ""
    if isinstance(raw, str):
        return raw.strip()
    try:
        return cell_text(raw, "patient_id").strip()
    except B12labError:  # the panel's reading names the problem
        return str(raw)


def panel_key(plan: ColumnPlan, date_order: str | None = None) -> KeyFunction:
    """Long layout: patient, date and accession (when there is one) make a panel.

    The date is the day the panel reader reads (`2026-01-05`, `05.01.2026` and
    `2026-01-05T08:00` are one panel); a date it cannot read keeps its text.
    """
    fields = plan.fields
    patient, date, accession = (fields.get(k) for k in ("patient_id", "date", "accession"))

    def key(row: Row) -> Hashable:
        line, cells, _ = row
        if cells is None:
            return (None, line)  # an unreadable line: a group of its own
        return (
            patient_key(_cell(cells, patient)),
            _date_key(_cell(cells, date), date_order),
            _text(cells, accession),
        )

    return key


def _date_key(raw: object, order: str | None) -> object:
    if isinstance(raw, str):
        return _date_text_key(raw.strip(), order)
    return _parsed_date(raw, order)


@lru_cache(maxsize=8192)
def _date_text_key(text: str, order: str | None) -> object:
    return _parsed_date(text, order)


def _parsed_date(raw: object, order: str | None) -> object:
    from b12lab.reading.fields import parse_date
    from b12lab.reading.values import is_missing

    if raw is None or is_missing(raw):
        return ""
    try:
        return parse_date(raw, "date", order) or ""
    except B12labError:  # the panel's reading names the problem
        return ("not a date", str(raw).strip())


def patient_level(plan: ColumnPlan) -> KeyFunction:
    index = plan.fields.get("patient_id")

    def key(row: Row) -> Hashable:
        line, cells, _ = row
        if cells is None:
            return (None, line)
        return (patient_key(_cell(cells, index)),)

    return key


def row_levels(
    plan: ColumnPlan, timeline: bool, date_order: str | None = None
) -> list[KeyFunction] | None:
    """The keys that group rows, coarsest first; None when every row is its own record."""
    levels = [patient_level(plan)] if timeline else []
    if plan.layout == "long":
        levels.append(panel_key(plan, date_order))
    return levels or None


def _cell(cells: Sequence[object], index: int | None) -> object:
    if index is None or index >= len(cells):
        return ""
    return cells[index]


def _text(cells: Sequence[object], index: int | None) -> str:
    return str(_cell(cells, index)).strip()


# --- already grouped? ---------------------------------------------------------------


class _EndedKeys:
    """Keys that have ended, in a Bloom filter: "seen" may be wrong, "not seen" never is."""

    def __init__(self, size: int = FILTER_BYTES, hashes: int = FILTER_HASHES):
        self.bits = bytearray(size)
        self.size = size * 8
        self.hashes = hashes

    def _positions(self, key: bytes) -> Iterator[int]:
        digest = hashlib.blake2b(key, digest_size=16).digest()
        first = int.from_bytes(digest[:8], "little")
        step = int.from_bytes(digest[8:], "little") | 1
        return ((first + i * step) % self.size for i in range(self.hashes))

    def add(self, key: bytes) -> None:
        for position in self._positions(key):
            self.bits[position >> 3] |= 1 << (position & 7)

    def __contains__(self, key: bytes) -> bool:
        return all(self.bits[p >> 3] & (1 << (p & 7)) for p in self._positions(key))


class Contiguity:
    """Watches the keys of each row, level by level: does an ended key come back?"""

    def __init__(self, levels: int):
        self.current: list[bytes | None] = [None] * levels
        self.ended = _EndedKeys()
        self.grouped = True

    def see(self, keys: Sequence[bytes]) -> bool:
        for level, key in enumerate(keys):
            current = self.current[level]
            if key == current:
                continue
            if current is not None:
                self.ended.add(bytes([level]) + current)
            if self.grouped and bytes([level]) + key in self.ended:
                self.grouped = False
            self.current[level] = key
        return self.grouped


def encoded_keys(row: Row, levels: Sequence[KeyFunction]) -> list[bytes]:
    """Each level's key as its 128-bit BLAKE2b digest: short and of one size, whatever the
    cells, so that sorting keys stays within the memory limit (two different keys share
    a digest with a probability of about 2**-128)."""
    return [
        hashlib.blake2b(repr(level(row)).encode("utf-8", "surrogatepass"), digest_size=16).digest()
        for level in levels
    ]


def file_is_grouped(path: str, label: str, levels: Sequence[KeyFunction]) -> bool | None:
    """A first pass over a CSV export: are its rows already grouped?

    None when `path` is not a regular file (a pipe or a device cannot be read
    twice); its rows are then spooled and checked on the way.
    """
    from b12lab.inputs.export import ReadStats, read_header, records, text_lines

    if not os.path.isfile(path):
        return None
    check = Contiguity(len(levels))
    stats = ReadStats()
    phases.phase("checking the row order", os.path.getsize(path), lambda: stats.bytes_read)
    with open(path, "rb") as stream:
        header, rest = read_header(text_lines(stream, stats, label), label)
        for number, record in enumerate(records(rest, header.delimiter, header.lines)):
            if not check.see(encoded_keys((record.line, record.cells, record.problem), levels)):
                return False
            if number % PROGRESS_EVERY == 0:
                phases.tick()
    return True


# --- putting rows in group order ----------------------------------------------------


def arrange(
    rows: Iterable[Row],
    levels: Sequence[KeyFunction],
    *,
    grouped: bool | None = None,
    settings: GroupSettings | None = None,
    notes: list[str] | None = None,
    what: str = "patient and date",
) -> Iterator[Row]:
    """The rows, each group's rows contiguous, groups in the order of their first row.

    `grouped`: True when a first pass found the rows grouped (they are
    streamed), False when it found them not grouped, None when unknown (the
    rows are checked as they are spooled). `notes` gets a line when the rows
    were grouped out of core.
    """
    if grouped:
        yield from rows
        return
    settings = settings or GroupSettings.from_env()
    rows = iter(rows)
    head = list(itertools.islice(rows, settings.in_memory_rows + 1))
    if len(head) <= settings.in_memory_rows:
        yield from _in_memory(head, levels)
        return
    rows = itertools.chain(head, rows)
    del head
    with _workspace(settings) as work:
        # Rows are spooled by Python before DuckDB reads them, so that an error
        # in reading them (or an interruption) reaches the caller as it was.
        spooled = [0]
        with _private_files():
            spool, in_order = _spool(rows, levels, work, spooled)
        if grouped is None and in_order:
            written = [0]
            phases.phase("writing", spooled[0], lambda: written[0])
            for row in _replay(spool):
                written[0] += 1
                if written[0] % PROGRESS_EVERY == 0:
                    phases.tick()
                yield row
            return
        count = [0]
        yield from _out_of_core(spool, len(levels), settings, work, count, spooled[0])
        if notes is not None:
            memory = f"{MEMORY_ENV}={settings.memory}"
            if len(count) > 1 and count[1] < settings.memory_bytes:
                memory += f", lowered to {count[1] // 10**6}MB to fit the address-space limit"
            notes.append(
                f"the export is not grouped by {what}: its {count[0]:,} rows were grouped "
                f"out of core ({memory})"
            )


def _in_memory(rows: list[Row], levels: Sequence[KeyFunction]) -> list[Row]:
    firsts: list[dict[Hashable, int]] = [{} for _ in levels]
    order = []
    for position, row in enumerate(rows):
        key = tuple(
            first.setdefault(level(row), position)
            for first, level in zip(firsts, levels, strict=True)
        )
        order.append((key, position))
    order.sort()
    return [rows[position] for _, position in order]


@contextmanager
def _workspace(settings: GroupSettings) -> Iterator[str]:
    """A private temporary directory (mode 0700), removed however the block ends; a guard
    process removes it also when this process is killed or aborts."""
    import shutil
    import subprocess

    base = settings.temp_dir or tempfile.gettempdir()
    try:
        path = tempfile.mkdtemp(prefix="b12lab-group-", dir=base)
    except OSError as error:
        raise GroupingError(
            f"cannot create a temporary directory in {base} to group the rows: "
            f"{error.strerror or error}",
            fix="point TMPDIR at a writable directory, or sort the export by patient and date",
        ) from None
    guard = _guard(path)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        if guard is not None:
            guard.stdin.close()  # the guard has nothing left to remove; it ends
            with suppress(subprocess.TimeoutExpired):
                guard.wait(timeout=5)


# The guard: a separate process holding the read end of a pipe whose write end only
# this process holds. However this process ends (an exception, a signal, SIGKILL, an
# abort in a native library), the pipe closes and the guard removes the directory.
_GUARD_SCRIPT = 'cat >/dev/null; rm -rf -- "$1"'


def _guard(path: str):
    """A process that removes `path` once this one has ended; None where none can start."""
    import subprocess

    shell = "/bin/sh"
    if not os.path.exists(shell):
        return None
    try:
        return subprocess.Popen(
            [shell, "-c", _GUARD_SCRIPT, "b12lab-group-guard", path],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C for b12lab does not stop its guard first
        )
    except OSError:
        return None


@contextmanager
def _private_files() -> Iterator[None]:
    """Files created in the block (the spool, DuckDB's database and spill files, the
    buckets) are private to the user (0600) whatever the umask; the umask is restored
    before any row is handed on, so output files still follow it."""
    mask = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(mask)


# Address space (ulimit -v) that DuckDB's start-up, its one thread and Python's
# working set take beside the memory limit; measured about 70 MB with two malloc arenas.
DUCKDB_OVERHEAD = 160 * 10**6


def _address_space() -> tuple[int, int] | None:
    """(the address-space limit, the address space in use), or None when unlimited."""
    try:
        import resource
    except ImportError:  # not on this system
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    used = 0
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    used = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return soft, used


def _fewer_malloc_arenas() -> None:
    """glibc reserves 64 MiB of address space per thread's malloc arena: keep two, so that
    DuckDB's and Arrow's threads fit under an address-space limit."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "mallopt"):
            libc.mallopt(-8, 2)  # M_ARENA_MAX
    except OSError:
        pass


def _memory_within_limits(settings: GroupSettings) -> int:
    """DuckDB's memory limit: B12LAB_GROUP_MEMORY, lowered to fit an address-space limit.

    DuckDB's limit and the buckets (a quarter of it, read back into Python objects
    of about twice their size) must fit beside DUCKDB_OVERHEAD; where even the
    least limit does not, the run says so, naming the address-space limit.
    """
    space = _address_space()
    if space is None:
        return settings.memory_bytes
    limit, used = space
    free = limit - used - DUCKDB_OVERHEAD
    fitting = int(free / 1.5)
    if fitting >= settings.memory_bytes:
        return settings.memory_bytes
    if fitting >= MIN_MEMORY:
        return fitting
    needed = used + DUCKDB_OVERHEAD + int(MIN_MEMORY * 1.5)
    raise GroupingError(
        f"the address-space limit (ulimit -v {limit // 1024} KiB) leaves too little memory "
        f"to group the rows out of core (about {needed // 2**20} MiB are needed)",
        fix=f"raise it with ulimit -v {_round_up(needed) // 1024} or more, or sort the "
        "export by patient and date so that it is streamed",
    )


def _round_up(size: int) -> int:
    step = 64 * 2**20
    return -(-size // step) * step


def _memory_error(settings: GroupSettings, memory: int, error: object) -> GroupingError:
    """The limit to raise, named correctly: the address space where one is set and
    DuckDB already had all of it that fits, else B12LAB_GROUP_MEMORY."""
    space = _address_space()
    if space is not None and memory < settings.memory_bytes:
        limit = space[0]
        return GroupingError(
            f"grouping the rows ran out of memory within the address-space limit "
            f"(ulimit -v {limit // 1024} KiB; {MEMORY_ENV} lowered to {memory // 10**6}MB "
            "to fit)",
            fix="raise the limit with ulimit -v, or sort the export by patient and date",
        )
    if space is not None:
        limit = space[0]
        return GroupingError(
            f"grouping the rows needed more memory than {MEMORY_ENV}={settings.memory}",
            fix=f"raise {MEMORY_ENV} (the address-space limit, ulimit -v "
            f"{limit // 1024} KiB, leaves room for about "
            f"{max(int((limit - space[1] - DUCKDB_OVERHEAD) / 1.5), 0) // 10**6}MB), "
            "or sort the export by patient and date",
        )
    return GroupingError(
        f"grouping the rows needed more memory than {MEMORY_ENV}={settings.memory}",
        fix=f"raise {MEMORY_ENV}, or sort the export by patient and date",
    )


def _schema(levels: int):
    import pyarrow as pa

    fields = [pa.field("seq", pa.int64(), nullable=False)]
    for i in range(levels):  # a key's digest as two 64-bit numbers
        fields += [pa.field(f"k{i}a", pa.int64(), False), pa.field(f"k{i}b", pa.int64(), False)]
    fields.append(pa.field("row", pa.binary(), nullable=False))
    return pa.schema(fields)


def _batches(
    rows: Iterable[Row], levels: Sequence[KeyFunction], check: Contiguity | None = None
) -> Iterator:
    """Arrow record batches: input position, the key of each level, the pickled row."""
    import pyarrow as pa

    schema = _schema(len(levels))
    columns: list[list] = [[] for _ in range(2 * len(levels) + 2)]
    for seq, row in enumerate(rows):
        keys = encoded_keys(row, levels)
        if check is not None:
            check.see(keys)
        columns[0].append(seq)
        for index, key in enumerate(keys):
            columns[2 * index + 1].append(int.from_bytes(key[:8], "little", signed=True))
            columns[2 * index + 2].append(int.from_bytes(key[8:], "little", signed=True))
        columns[-1].append(pickle.dumps(row, protocol=pickle.HIGHEST_PROTOCOL))
        if len(columns[0]) == BATCH_ROWS:
            yield pa.record_batch(columns, schema=schema)
            columns = [[] for _ in columns]
    if columns[0]:
        yield pa.record_batch(columns, schema=schema)


def _spool(
    rows: Iterable[Row], levels: Sequence[KeyFunction], work: str, count: list[int]
) -> tuple[str, bool]:
    """Rows that can be read only once, written to an Arrow file while they are checked
    (`count` gets how many)."""
    import pyarrow.ipc as ipc

    path = os.path.join(work, "spool.arrow")
    check = Contiguity(len(levels))
    with ipc.new_stream(path, _schema(len(levels))) as writer:
        for batch in _batches(rows, levels, check):
            writer.write_batch(batch)
            count[0] += batch.num_rows
            phases.tick()  # the reading phase: how far the input has been read
    return path, check.grouped


def _read_spool(path: str) -> Iterator:
    import pyarrow as pa
    import pyarrow.ipc as ipc

    with pa.OSFile(path) as source:
        yield from ipc.open_stream(source)


def _replay(path: str) -> Iterator[Row]:
    for batch in _read_spool(path):
        for blob in batch.column("row").to_pylist():
            yield pickle.loads(blob)


def _out_of_core(
    spool: str, levels: int, settings: GroupSettings, work: str, count: list[int], rows: int
) -> Iterator[Row]:
    """The spooled rows in group order: DuckDB sorts the keys, buckets on disk hold the rows.

    DuckDB sees only positions and keys, never the rows themselves: each
    level is one sort by (key, position), where the first row of a run of one
    key is its group's first row; a last sort by (first rows..., position)
    gives each row its place in the output. The rows are then dealt out, in
    input order, to bucket files of consecutive places, each small enough
    (a quarter of the memory limit) to be put in order in memory.
    """
    memory = _memory_within_limits(settings)
    count.append(memory)  # for the summary's note
    _fewer_malloc_arenas()
    import duckdb

    steps = levels + 3  # load the keys, one sort per level, the places, dealing the rows
    phases.phase(f"grouping {rows:,} rows", steps)
    connection = None
    try:
        with _private_files():
            connection = duckdb.connect(
                os.path.join(work, "keys.duckdb"),
                config={  # at start-up, so DuckDB never starts more threads than one
                    "threads": 1,
                    "memory_limit": f"{memory // 2**20}MiB",
                    "temp_directory": os.path.join(work, "spill"),
                    "preserve_insertion_order": False,
                },
            )
            buckets = _sorted_into_buckets(connection, spool, levels, memory, work, count)
        phases.tick(steps)
    except (duckdb.OutOfMemoryException, MemoryError) as error:
        raise _memory_error(settings, memory, error) from None
    except duckdb.IOException as error:
        raise GroupingError(
            f"cannot write the temporary files that group the rows in {work}: {error}",
            fix="free space there or point TMPDIR at a larger disk, or sort the export",
        ) from None
    except duckdb.Error as error:  # one clear line, never a traceback
        text = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        if "alloc" in text.lower() or "memory" in text.lower():
            raise _memory_error(settings, memory, error) from None
        raise GroupingError(
            f"grouping the rows out of core failed: {text}",
            fix="sort the export by patient and date so that it is streamed",
        ) from None
    finally:
        if connection is not None:
            connection.close()
    written = [0]
    phases.phase("writing", rows, lambda: written[0])
    for bucket in buckets:
        chunks = []
        with open(bucket, "rb") as stream:
            while True:
                try:
                    chunks.extend(pickle.load(stream))
                except EOFError:
                    break
        os.remove(bucket)
        chunks.sort()
        for _, blob in chunks:
            written[0] += 1
            if written[0] % PROGRESS_EVERY == 0:
                phases.tick()
            yield pickle.loads(blob)


def _sorted_into_buckets(connection, spool: str, levels: int, memory: int, work: str, count):
    """The sorts of `_out_of_core` in DuckDB, then the rows dealt out to bucket files."""
    keys = ["seq", *(f"k{i}{half}" for i in range(levels) for half in "ab")]
    _load(connection, "keys0", _columns(_read_spool(spool), keys))
    phases.tick(1)
    table, firsts = "keys0", []
    for level in range(levels):
        phases.tick(level + 1)
        later = [f"k{i}{half}" for i in range(level + 1, levels) for half in "ab"]
        keep = ["seq", *firsts, *later]
        key = f"k{level}a, k{level}b"
        query = f"SELECT {', '.join(keep)}, {key} FROM {table} ORDER BY {key}, seq"
        path = os.path.join(work, f"level{level}.arrow")
        _write_firsts(_reader(connection, query), f"k{level}", f"f{level}", keep, path)
        firsts.append(f"f{level}")
        connection.execute(f"DROP TABLE {table}")
        table = f"keys{level + 1}"
        _load_file(connection, table, path)
    phases.tick(levels + 1)
    path = os.path.join(work, "places.arrow")
    order = ", ".join([*firsts, "seq"])
    _write_places(_reader(connection, f"SELECT seq FROM {table} ORDER BY {order}"), path)
    connection.execute(f"DROP TABLE {table}")
    _load_file(connection, "places", path)
    places = _reader(connection, "SELECT place FROM places ORDER BY seq")
    phases.tick(levels + 2)
    return _deal(_read_spool(spool), places, memory // 4, work, count)


def _columns(batches: Iterable, names: list[str]):
    """A reader of only some columns of the spooled batches (the keys, not the rows)."""
    import pyarrow as pa

    batches = iter(batches)
    first = next(batches).select(names)
    rest = (batch.select(names) for batch in batches)
    return pa.RecordBatchReader.from_batches(first.schema, itertools.chain([first], rest))


def _write_places(reader, path: str) -> None:
    """Positions in output order -> (seq, place) pairs."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    schema = pa.schema([("seq", pa.int64()), ("place", pa.int64())])
    place = 0
    with ipc.new_stream(path, schema) as writer:
        for batch in reader:
            seqs = batch.column(0)
            places = pa.array(range(place, place + len(seqs)), pa.int64())
            place += len(seqs)
            writer.write_batch(pa.record_batch([seqs, places], schema=schema))


def _deal(spool_batches: Iterable, places, bucket_bytes: int, work: str, count: list[int]):
    """Rows (in input order) with their places (in input order) into bucket files.

    A bucket holds the rows of `size` consecutive places, `size` chosen so a
    bucket's rows take about `bucket_bytes` once read back into memory; the
    buckets in order, each put in order, are the output.
    """
    place_batches = iter(places)
    pending: list[int] = []
    size = 0
    paths: list[str] = []
    for batch in spool_batches:
        blobs = batch.column("row").to_pylist()
        while len(pending) < len(blobs):
            pending.extend(next(place_batches).column(0).to_pylist())
        mine, pending = pending[: len(blobs)], pending[len(blobs) :]
        if not size:  # from the first batch's rows, with what Python adds to each
            average = sum(len(b) for b in blobs) // len(blobs) + ROW_OVERHEAD
            size = max(1_000, bucket_bytes // average)
        by_bucket: dict[int, list[tuple[int, bytes]]] = {}
        for place, blob in zip(mine, blobs, strict=True):
            by_bucket.setdefault(place // size, []).append((place, blob))
        for number, chunk in by_bucket.items():
            while len(paths) <= number:
                paths.append(os.path.join(work, f"bucket{len(paths)}.pickle"))
            with open(paths[number], "ab") as stream:
                pickle.dump(chunk, stream, protocol=pickle.HIGHEST_PROTOCOL)
        count[0] += len(blobs)
    return paths


def _reader(connection, query: str):
    relation = connection.sql(query)
    if hasattr(relation, "to_arrow_reader"):
        return relation.to_arrow_reader(BATCH_ROWS)
    return relation.record_batch(BATCH_ROWS)  # DuckDB 1.x


def _load(connection, table: str, reader) -> None:
    connection.register("incoming", reader)
    try:
        connection.execute(f"CREATE TABLE {table} AS SELECT * FROM incoming")
    finally:
        connection.unregister("incoming")
    connection.execute("CHECKPOINT")  # the rows are on disk: the sorts get the memory


def _load_file(connection, table: str, path: str) -> None:
    import pyarrow as pa
    import pyarrow.ipc as ipc

    with pa.OSFile(path) as source:
        _load(connection, table, ipc.open_stream(source))
    os.remove(path)


def _write_firsts(reader, key: str, first: str, keep: list[str], path: str) -> None:
    """Rows sorted by (key, seq) -> the same rows with `first`, their group's first seq.

    `key` names two columns, `{key}a` and `{key}b` (the halves of a digest).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.ipc as ipc

    writer = None
    last_key, last_first = None, None
    try:
        for batch in reader:
            if batch.num_rows == 0:
                continue
            high, low, seqs = batch.column(f"{key}a"), batch.column(f"{key}b"), batch.column("seq")
            size = batch.num_rows
            starts = pc.or_(
                pc.not_equal(high.slice(1), high.slice(0, size - 1)),
                pc.not_equal(low.slice(1), low.slice(0, size - 1)),
            )
            opens = (high[0].as_py(), low[0].as_py()) != last_key
            starts = pa.concat_arrays([pa.array([opens]), starts])
            firsts = pc.if_else(starts, seqs, pa.scalar(None, pa.int64()))
            if not opens:  # the run of the last batch goes on
                firsts = pa.concat_arrays([pa.array([last_first], pa.int64()), firsts])
                firsts = pc.fill_null_forward(firsts).slice(1)
            else:
                firsts = pc.fill_null_forward(firsts)
            last_key, last_first = (high[-1].as_py(), low[-1].as_py()), firsts[-1].as_py()
            out = pa.RecordBatch.from_arrays(
                [batch.column(name) for name in keep] + [firsts], names=[*keep, first]
            )
            if writer is None:
                writer = ipc.new_stream(path, out.schema)
            writer.write_batch(out)
    finally:
        if writer is not None:
            writer.close()
