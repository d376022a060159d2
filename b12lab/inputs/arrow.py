"""Warehouse exports: Parquet and Arrow IPC (file and stream format), read in record batches.

A Parquet or Arrow input is a table: its column names are the header, each
row one record. The record number (1-based, the first row is 1) is what
`b12lab batch` writes in the `line` column for these inputs. Cells are read
exactly as a CSV cell would be:

- a text column is read as text (`180 pg/mL`, `<50`, `n/a`);
- a number column (integer, floating point, decimal) is a number with no
  unit: the header (`B12 (pg/mL)`), a `<analyte>_unit` column or `--unit`
  gives the unit, as for CSV, and without one the canonical unit is assumed
  with a warning (an error with --strict). A stored number is exact: `1.476`
  in a float column is one point four seven six whatever decimal mark the
  file's text columns use;
- date32, date64 and timestamp columns are dates (a timestamp with a time
  zone is read as the date on the clock of that zone);
- a null is a missing value.

The text columns alone show the file's decimal mark (as in a CSV export).
Nothing is read whole: Parquet through `ParquetFile.iter_batches`, Arrow IPC
batch by batch. Standard input can carry an Arrow IPC stream (or file);
Parquet needs a file, since its index is at the end.

pyarrow and numpy are imported only here, in the columnar path and in the
table functions, never on the one-patient `interpret` path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from b12lab.errors import InputError
from b12lab.messages import head_of

ARROW_KINDS = ("parquet", "arrow")
KIND_NAMES = {"parquet": "Parquet", "arrow": "Arrow IPC"}
PARQUET_MAGIC = b"PAR1"
ARROW_FILE_MAGIC = b"ARROW1"
BATCH_ROWS = 65_536  # rows per record batch read from a Parquet file
# A number whose text could be read two ways (`1.476`): given one more digit, it is not.
_AMBIGUOUS_NUMBER = re.compile(r"^-?[1-9]\d{0,2}\.\d{3}$")


def _unreadable(kind: str, label: str, error: BaseException) -> InputError:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return InputError(
        f"export {label} is not a readable {KIND_NAMES[kind]} file ({reason[:160]})",
        fix=f"check that the file is complete, or give --input-format "
        f"{'arrow' if kind == 'parquet' else 'parquet'} or csv if it is another kind",
    )


@dataclass
class ArrowInput:
    """An open Parquet or Arrow input: its schema, row count when known, and batches."""

    kind: str
    label: str
    schema: pa.Schema
    rows: int | None
    _batches: Iterator[pa.RecordBatch]

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The record batches; a corrupt block is an InputError, never a traceback."""
        try:
            yield from self._batches
        except (pa.ArrowException, OSError, ValueError) as error:
            raise _unreadable(self.kind, self.label, error) from None


def open_arrow(stream, source: str, label: str, kind: str, stack: ExitStack) -> ArrowInput:
    """The input `stream` (opened from `source`, `-` for stdin) as record batches."""
    import pyarrow.ipc as ipc

    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            if source == "-":
                raise InputError(
                    "a Parquet file cannot be read from standard input (its index is at the end)",
                    fix="give the file's path, or send an Arrow IPC stream on standard input",
                )
            parquet = pq.ParquetFile(source)
            stack.callback(parquet.close)
            return ArrowInput(
                kind,
                label,
                parquet.schema_arrow,
                parquet.metadata.num_rows,
                parquet.iter_batches(batch_size=BATCH_ROWS),
            )
        head = head_of(stream, len(ARROW_FILE_MAGIC) + 2)
        if head.startswith(ARROW_FILE_MAGIC) and source != "-":
            memory = pa.memory_map(source)
            stack.callback(memory.close)
            reader = ipc.open_file(memory)
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
            rows = sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
            return ArrowInput(kind, label, reader.schema, rows, batches)
        if head.startswith(ARROW_FILE_MAGIC):
            stream.read(8)  # the file format is the stream format after its magic and padding
        reader = ipc.open_stream(stream)
        return ArrowInput(kind, label, reader.schema, None, iter(reader))
    except InputError:
        raise
    except (pa.ArrowException, OSError, ValueError) as error:
        raise _unreadable(kind, label, error) from None


# --- cells -----------------------------------------------------------------------------


def number_text(value: float, exact: str | None = None) -> str:
    """A stored number as text that every decimal-mark convention reads as that number."""
    text = exact if exact is not None else repr(float(value))
    return text + "0" if _AMBIGUOUS_NUMBER.match(text) else text


def _numbers_as_text(column: pa.Array) -> pa.Array:
    """A number column as text, each distinct number formatted once."""
    encoded = pc.dictionary_encode(column)
    values = encoded.dictionary
    kind = values.type
    if pa.types.is_integer(kind):
        shown = [str(v) for v in values.to_pylist()]
    elif pa.types.is_decimal(kind):
        shown = [number_text(float(v), format(v, "f")) for v in values.to_pylist()]
    else:
        floats = values.to_numpy(zero_copy_only=False)
        if pa.types.is_float64(kind):
            shown = [number_text(v) for v in floats.tolist()]
        else:  # a narrower float: its own shortest text (0.1, not 0.10000000149011612)
            shown = [number_text(float(v), str(v)) for v in floats]
    return pa.array(shown, pa.string()).take(encoded.indices)


def _as_cells(column: pa.Array, name: str) -> tuple[pa.Array, bool]:
    """One column as the cells the reading layer takes, and whether it was text."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        return _as_cells(column.cast(kind.value_type), name)
    if pa.types.is_string(kind):
        return column, True
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return column.cast(pa.string()), True
    if pa.types.is_null(kind):
        return column.cast(pa.string()), False
    if pa.types.is_floating(kind):
        column = pc.if_else(pc.is_nan(column), pa.scalar(None, kind), column)
        return _numbers_as_text(column), False
    if pa.types.is_integer(kind) or pa.types.is_decimal(kind):
        return _numbers_as_text(column), False
    if pa.types.is_boolean(kind):
        return column.cast(pa.string()), False
    if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
        return _date_cells(column, name), False
    raise InputError(
        f"column '{name}' holds {kind} values, which are not lab results, dates or text",
        fix="give that column as text or numbers, or leave it out of the export",
    )


# Days from 1970-01-01 to the first and last day a date can be (0001-01-01, 9999-12-31),
# and how many of each stored unit make a day.
_FIRST_DAY, _LAST_DAY = -719_162, 2_932_896
_PER_DAY = {"day": 1, "s": 86_400, "ms": 86_400_000, "us": 86_400_000_000}
_PER_DAY["ns"] = _PER_DAY["us"] * 1000


def _date_cells(column: pa.Array, name: str) -> pa.Array:
    """A date or timestamp column as dates (a zoned timestamp: the date on that zone's clock).

    A stored value outside the years 1 to 9999 becomes text saying what was
    stored, so that row gets its own error naming the column and the run goes
    on; a time zone the time-zone database does not know is one clear error.
    """
    kind = column.type
    if pa.types.is_date32(kind):
        raw, per_day = column.view(pa.int32()).cast(pa.int64()), 1
    else:
        unit = "ms" if pa.types.is_date64(kind) else kind.unit
        raw, per_day = column.view(pa.int64()), _PER_DAY[unit]
    low = max((_FIRST_DAY + 1) * per_day, -(2**63))  # a day's margin for a time zone
    high = min(_LAST_DAY * per_day, 2**63 - 1)
    outside = pc.fill_null(pc.or_(pc.less(raw, low), pc.greater(raw, high)), False)
    bad = pc.any(outside).as_py()
    if bad:
        column = pc.if_else(outside, pa.scalar(None, kind), column)
    tz = getattr(kind, "tz", None)
    if tz is not None:
        try:
            column = pc.local_timestamp(column)
        except pa.ArrowInvalid:
            raise InputError(
                f"column '{name}' holds timestamps in the time zone '{tz[:60]}', "
                "which the time-zone database does not know",
                fix="store the timestamps in UTC or a zone such as Europe/Berlin, "
                "or give the dates as text",
            ) from None
    dates = column.cast(pa.date32())
    if not bad:
        return dates
    unit = "day" if per_day == 1 else ("ms" if pa.types.is_date64(kind) else kind.unit)
    shown = pc.binary_join_element_wise(raw.cast(pa.string()), unit, " ")
    return pc.if_else(outside, shown, dates.cast(pa.string()))


def cell_table(
    table: pa.Table, used: Iterable[int] | None = None, kept: Iterable[int] = ()
) -> tuple[pa.Table, list[bool]]:
    """The table's columns as readable cells (header order kept), and which were text.

    Columns outside `used` (those the plan ignores) become empty text columns,
    so a column of a kind b12lab does not read costs nothing when unused; a
    `kept` column (--keep) the plan does not read is passed on as it is.
    """
    wanted = set(range(table.num_columns)) if used is None else set(used)
    kept = set(kept)
    columns, texts = [], []
    for index, (name, column) in enumerate(zip(table.column_names, table.columns, strict=True)):
        column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if index in wanted:
            cells, text = _as_cells(column, name)
        elif index in kept:
            cells, text = column, False
        else:
            cells, text = pa.nulls(len(column), pa.string()), False
        columns.append(cells)
        texts.append(text)
    names = [f"c{i}" for i in range(len(columns))]
    return pa.Table.from_arrays(columns, names=names), texts


def row_cells(table: pa.Table) -> Iterator[list]:
    """Each row's cells as Python values (None for a null)."""
    columns = [column.to_pylist() for column in table.columns]
    for row in range(table.num_rows):
        yield [column[row] for column in columns]


def used_columns(plan) -> set[int]:
    """The header positions the plan reads."""
    used = set(plan.fields.values())
    for column in plan.analytes:
        used.add(column.index)
        if column.unit_index is not None:
            used.add(column.unit_index)
    return used


# --- the same core as a CSV export ------------------------------------------------------


@dataclass
class Piece:
    """One batch of input rows, as cells, with their record numbers."""

    cells: pa.Table
    lines: np.ndarray
    texts: list[bool]
    first_position: int = 0  # of its first row among the rows read before it


def pieces(
    batches: Iterable,
    names: list[str],
    plan,
    *,
    line_column: str | None = None,
    first_line: int = 1,
    kept: Iterable[int] = (),
) -> Iterator[Piece]:
    """Input batches (RecordBatch or Table with the columns `names`, plus `line_column`)
    as cell tables and record numbers: `line_column`'s values, else counted from
    `first_line`."""
    used = used_columns(plan)
    line = first_line
    for batch in batches:
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        if line_column is not None:
            if line_column not in table.column_names:
                raise InputError(
                    f"the input has no column '{line_column}' to number its rows",
                    fix="give line_column the name of a column of row numbers",
                )
            numbers = table.column(line_column)
            if numbers.null_count or not pa.types.is_integer(numbers.type):
                raise InputError(
                    f"column '{line_column}' must hold a whole number on every row",
                    fix="number the rows, e.g. 1, 2, 3, ...",
                )
            lines = numbers.to_numpy().astype(np.int64)
            table = table.drop_columns([line_column])
        else:
            lines = np.arange(line, line + table.num_rows, dtype=np.int64)
            line += table.num_rows
        if table.column_names != names:
            raise InputError(
                "a batch's columns differ from the first batch's: "
                + ", ".join(table.column_names[:8]),
                fix="give every batch the same columns in the same order",
            )
        cells, texts = cell_table(table, used, kept)
        yield Piece(cells, lines, texts)


def with_decimal_mark(interpreter, stream: Iterator[Piece]) -> Iterator[Piece]:
    """The pieces, once the interpreter's decimal mark is set from the text cells of the
    first rows (as for a CSV export; numbers stored as numbers show no mark). Eager:
    the mark is set before the row path looks at the policy."""
    import itertools

    from b12lab.batch.rows import AUTO, DECIMAL_SAMPLE

    if interpreter.policy.decimal != AUTO:
        return stream
    held: list[Piece] = []
    sample: list = []
    for piece in stream:
        held.append(piece)
        for line, cells in zip(piece.lines.tolist(), row_cells(piece.cells), strict=True):
            shown = [cell if text else None for cell, text in zip(cells, piece.texts, strict=True)]
            sample.append((line, shown, None))
            if len(sample) >= DECIMAL_SAMPLE:
                break
        if len(sample) >= DECIMAL_SAMPLE:
            break
    interpreter.policy = replace(interpreter.policy, decimal=interpreter._decimal_mark(sample))
    return itertools.chain(held, stream)


def decided_or_records(
    interpreter, stream: Iterator[Piece], by_columns: bool, workers: int = 1
) -> Iterator:
    """(piece, Decided) per piece on the columnar path (new keys decided by `workers`
    processes, stopped when the caller stops iterating); else (None, BatchRecord) per
    record of the row path (rows with their Python cells)."""
    stream = with_decimal_mark(interpreter, stream)
    if by_columns:
        from b12lab.batch.columnar import ColumnarInterpreter

        deciding = ColumnarInterpreter(interpreter, workers)
        try:
            for piece in stream:
                yield piece, deciding.decide(piece.cells, piece.lines)
        finally:
            deciding.close()
        return

    def rows():
        for piece in stream:
            for line, cells in zip(piece.lines.tolist(), row_cells(piece.cells), strict=True):
                yield line, cells, None

    for record in interpreter(rows()):
        yield None, record


def run_arrow_batch(stream, source: str, label: str, kind: str, ranges, options):
    """`b12lab batch` for a Parquet or Arrow IPC input (`options`: a BatchOptions): the
    CSV export's core, drained through the same loop."""
    from b12lab.batch import drain
    from b12lab.batch.drain import BatchSummary, Progress, export_interpreter, write_records

    summary = BatchSummary(noun=options.noun)
    with ExitStack() as stack:
        if source != "-":
            stack.callback(stream.close)
        found = open_arrow(stream, source, label, kind, stack)
        names = list(found.schema.names)
        interpreter = export_interpreter(names, ranges, summary, options)
        bar = Progress(options.progress, found.rows, label)
        stack.callback(bar.stop)
        by_columns = options.output_format.by_columns and drain.reads_by_columns(interpreter)
        kept = [column.index for column in interpreter.columns.kept]
        stream_of = pieces(found.batches(), names, interpreter.plan, kept=kept)
        decided = decided_or_records(interpreter, stream_of, by_columns, options.workers)
        stack.callback(decided.close)  # the forked deciders stop, however the run ends
        write_records(
            stack,
            (item for _, item in decided),
            summary,
            options,
            progress=lambda: bar.update(summary.panels),  # one row is one panel here
            columns=interpreter.columns,
        )
    summary.notes.extend(interpreter.plan.notes)
    summary.notes.extend(summary.assumption_lines())
    return summary
