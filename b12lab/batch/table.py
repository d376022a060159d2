"""Arrow tables in, Arrow tables out: `b12lab batch` for dataframes and clusters.

    import b12lab
    result = b12lab.interpret_table(table, as_of="2026-11-20")
    # Spark (schema: pyspark.sql.pandas.types.from_arrow_schema(b12lab.output_schema())):
    df.mapInArrow(functools.partial(b12lab.interpret_batches, as_of="2026-11-20"), schema)
    # Dask:
    ddf.map_partitions(b12lab.interpret_frame, as_of="2026-11-20", meta=b12lab.output_frame())

The input columns are read as `b12lab batch` reads a Parquet or Arrow file
(`b12lab.inputs.arrow`): column names are the header, each row one record,
text cells as text, numbers as numbers with no unit, dates as dates, nulls
missing. The records are decided by the same code as `b12lab batch` (the
columnar path for a wide export, the row path otherwise), and the output
table is built from the very cells `b12lab batch` writes to CSV, parsed with
a fixed schema, so every CSV column is here, with the same text:

- `line` (int64): the record number as `b12lab batch` writes it for a
  Parquet or Arrow file (1 for the first row; for a panel of several rows, its
  first row). Counted from `first_line` over every batch of one call, or
  taken from the input column `line_column`, which a cluster needs so that
  numbers run over the whole dataset rather than restart in each partition;
- `panel_date` (date32, null when the panel has no date);
- every other column of the batch CSV (string, "" when empty, formula
  neutralization included, exactly the CSV cell);
- `row` (int64): the input row number (0-based, within the rows given to
  this call) of the record's first row: `table.take(result["row"])` gives
  each record's input row.

Both functions are pure: module-level, options are plain picklable values
(str, bool, int, dicts of str), and the only state is a per-process cache of
loaded ranges. So `functools.partial(interpret_batches, **options)` pickles,
and runs per partition on Dask (`map_partitions`) or Spark (`mapInArrow`).
A partition is decided on its own: rows of one panel (long layout) or of one
patient (`timeline=True`) must be in the same partition; the decimal mark, when
not given, is found from each partition's first rows.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from numbers import Integral
from types import MappingProxyType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from b12lab.errors import keyword_wording


def _keyword_errors(function):
    """A table function whose errors name options as its keyword arguments (`mapping=`,
    not `--map`: `b12lab.errors.option`), wherever they are raised; for a generator,
    while each of its batches is made, not while the caller holds one."""
    if inspect.isgeneratorfunction(function):

        @functools.wraps(function)
        def stepped(*args, **options):
            steps = function(*args, **options)
            try:
                while True:
                    with keyword_wording():
                        try:
                            item = next(steps)
                        except StopIteration:
                            return
                    yield item
            finally:
                steps.close()

        return stepped

    @functools.wraps(function)
    def called(*args, **options):
        with keyword_wording():
            return function(*args, **options)

    return called


ROW = "row"
OUTPUT_ROWS = 10_000  # records per output batch on the row path
_TYPES = {"line": pa.int64(), "panel_date": pa.date32()}


@_keyword_errors
def output_schema(names=None, **options) -> pa.Schema:
    """The schema of every table and batch these functions return for an input with
    these column `names` (a list, or a pyarrow or Spark schema's names): the batch
    CSV's columns for that input (`line` int64, `panel_date` date32, the rest
    string; the normalized-value columns of the analytes it has, and any `keep`
    columns), then `row` int64.

    Takes the options of `interpret_batches`. Without `names`, the columns of a
    long-layout input: a normalized-value column for every analyte.
    """
    return _schema(_csv_header(names, _given(options, "output_schema")))


def _schema(header: Sequence[str]) -> pa.Schema:
    fields = [pa.field(name, _TYPES.get(name, pa.string())) for name in header]
    return pa.schema([*fields, pa.field(ROW, pa.int64())])


def _csv_header(names, options: Mapping[str, Any]) -> tuple[str, ...]:
    from b12lab.output_columns import output_columns

    loaded = _ranges(options["ranges"])
    if names is None:
        return output_columns(loaded, None).csv_header
    names = [n for n in getattr(names, "names", names) if n != options["line_column"]]
    return _interpreter(names, loaded, _options(loaded, options)).columns.csv_header


def _interpreter(names, loaded, options):
    from b12lab.batch.rows import RowInterpreter

    return RowInterpreter.for_options(list(names), loaded, options)


@functools.cache
def _defaults() -> Mapping[str, Any]:
    """Every keyword option of the table functions with its default. The one list of
    them is `interpret_batches`' signature; the other functions take the same."""
    parameters = inspect.signature(interpret_batches).parameters.values()
    return MappingProxyType(
        {p.name: p.default for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}
    )


def _given(options: Mapping[str, Any], function: str) -> dict[str, Any]:
    """Every keyword option, as given in `options` or else its default, checked (see
    `_check_options`); a keyword the table functions do not take is a TypeError."""
    defaults = _defaults()
    for name in options:
        if name not in defaults:
            raise TypeError(f"{function}() got an unexpected keyword argument {name!r}")
    given = {**defaults, **options}
    _check_options(given)
    return given


def _options(loaded, options: Mapping[str, Any]):
    """The BatchOptions of the keyword options (all of them, `_given`): an option named
    as a BatchOptions field is that field, as it is, but for the raw forms read here
    (`mapping` as --map, the cell-reading options as one ReadPolicy, `as_of`, `rules`
    as --rules); `ranges`, `line_column` and `first_line` are the table functions' own.
    A table run writes what the batch CSV holds."""
    from dataclasses import fields

    from b12lab.api import resolve_rules
    from b12lab.batch.options import BatchOptions
    from b12lab.reading.columns import parse_map

    fields_given = {option.name for option in fields(BatchOptions)} & options.keys()
    built = {name: options[name] for name in fields_given}
    built.update(
        mapping=parse_map([f"{k}={v}" for k, v in (options["mapping"] or {}).items()], loaded),
        policy=_policy(
            options["decimal"],
            options["strict"],
            options["units"],
            options["date_format"],
        ),
        today=_today(options["as_of"], options["today"]),
        rules=resolve_rules(options["rules"], loaded),
    )
    return BatchOptions(**built)


def _ranges(ranges):
    """`ranges` as for `b12lab.interpret`: None, a Ranges, or an overlay file's path."""
    import os

    from b12lab.api import resolve_ranges

    if ranges is None or isinstance(ranges, (str, os.PathLike)):
        return _loaded(None if ranges is None else os.fspath(ranges))
    return resolve_ranges(ranges)


@functools.lru_cache(maxsize=8)
def _loaded(path: str | None):
    from b12lab.ranges import load_ranges

    return load_ranges(path)


def _policy(decimal: str, strict: bool, units: Mapping[str, str] | None, date_format):
    from b12lab.batch.rows import AUTO
    from b12lab.errors import InputError
    from b12lab.ranges import column_key
    from b12lab.reading.fields import parse_date_format
    from b12lab.reading.policy import ReadPolicy

    if decimal not in (AUTO, ".", ","):
        raise InputError(f"decimal '{decimal}' is not one of auto, '.', ','", fix="use '.' or ','")
    return ReadPolicy(
        decimal=decimal,
        strict=strict,
        units={column_key(key): unit.strip() for key, unit in (units or {}).items()},
        date_order=parse_date_format(date_format),
    )


def _today(as_of, today) -> dt.date | None:
    from b12lab.api import evaluation_date

    return evaluation_date(as_of, today)


@_keyword_errors
def interpret_batches(
    batches: Iterable,
    *,
    ranges: str | None = None,
    guideline: str | None = None,
    as_of: dt.date | str | None = None,
    today: dt.date | str | None = None,
    layout: str = "auto",
    mapping: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    decimal: str = "auto",
    date_format: str | None = None,
    strict: bool = False,
    timeline: bool = False,
    line_column: str | None = None,
    first_line: int = 1,
    keep: Sequence[str] = (),
    rules=None,
) -> Iterator[pa.RecordBatch]:
    """Record batches (or tables) of lab rows in, record batches of `output_schema()` out.

    Options mirror `b12lab batch` and `b12lab.interpret`: `ranges` (a lab's overlay
    file, as --ranges, or a loaded Ranges), `guideline` ("who" or "nice"), `as_of`
    (as --as-of; a date or ISO text; `today` is its older name),
    `layout` ("auto", "wide", "long"), `mapping` ({COLUMN: KEY}, as --map),
    `units` ({COLUMN or analyte: UNIT}, as --unit), `decimal` ("auto", ".", ","),
    `date_format` ("DD/MM/YYYY" or "MM/DD/YYYY"), `strict`, `timeline`, `keep`
    (input columns copied into every record, as --keep), `rules` (a laboratory's
    rules file, as --rules, or a loaded Catalogue). Bad input
    (an unknown guideline, a --map key) raises `b12lab.errors.InputError`; a bad
    cell never does: its record carries the error, as in the batch CSV.
    """
    given = dict(locals())  # the keyword options, before any other name is bound
    del given["batches"]
    from b12lab.batch import drain
    from b12lab.inputs.arrow import decided_or_records, pieces

    given = _given(given, "interpret_batches")
    loaded = _ranges(ranges)
    options = _options(loaded, given)
    batches = iter(batches)
    first = next(batches, None)
    if first is None:
        return
    names = [name for name in first.schema.names if name != line_column]
    interpreter = _interpreter(names, loaded, options)
    schema = _schema(interpreter.columns.csv_header)
    by_columns = drain.reads_by_columns(interpreter)
    stream = pieces(
        _chained(first, batches),
        names,
        interpreter.plan,
        line_column=line_column,
        first_line=first_line,
        kept=[column.index for column in interpreter.columns.kept],
    )
    positions = _Positions(line_column is None, first_line)
    pending: list[list[str]] = []  # the cells of records not yet handed on
    pending_rows: list[int] = []
    for piece, item in decided_or_records(interpreter, _noting(stream, positions), by_columns):
        if piece is not None:
            from b12lab.batch.columnar import decided_cells

            rows = positions.rows_of(piece)
            if rows:
                yield _outcomes(decided_cells(item), rows, schema)
            continue
        from b12lab.render.rows import csv_row

        pending.append(csv_row(item, interpreter.columns))
        pending_rows.append(positions.row_of(item.first_line))
        if len(pending) >= OUTPUT_ROWS:
            yield _outcomes(list(zip(*pending, strict=True)), pending_rows, schema)
            pending, pending_rows = [], []
    if pending:
        yield _outcomes(list(zip(*pending, strict=True)), pending_rows, schema)


def _check_options(options: Mapping[str, Any]) -> None:
    """The options `BatchOptions` does not check (those of the table functions, and the
    raw forms of --map, --unit and --strict), each of the right type (else TypeError)
    and value (else InputError), naming it, as the CLI refuses a bad flag before
    reading any row."""
    from b12lab.errors import InputError

    def problem(name: str, value: object, expected: str, example: str) -> str:
        return f"{name}={value!r}: expected {expected}; e.g. {name}={example}"

    strict, line_column, first_line = (
        options["strict"],
        options["line_column"],
        options["first_line"],
    )
    if not isinstance(strict, bool):
        raise TypeError(problem("strict", strict, "True or False", "True"))
    for name, example in (
        ("mapping", "{'Vit B12': 'b12'}"),
        ("units", "{'B12': 'pg/mL'}"),
    ):
        value = options[name]
        if value is not None and not (
            isinstance(value, Mapping)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        ):
            raise TypeError(problem(name, value, "a dict of texts", example))
    if line_column is not None and not isinstance(line_column, str):
        raise TypeError(problem("line_column", line_column, "a column name", "'line'"))
    if isinstance(first_line, bool) or not isinstance(first_line, Integral):
        raise TypeError(problem("first_line", first_line, "a whole number", "2"))
    if first_line < 1:
        raise InputError(
            f"first_line={first_line!r}: expected a whole number of at least 1",
            fix="e.g. first_line=2",
        )


@_keyword_errors
def interpret_table(table: pa.Table | pa.RecordBatch, **options) -> pa.Table:
    """A whole table at once: `interpret_batches` over its record batches, one table out.

    Takes the options of `interpret_batches`."""
    if not isinstance(table, (pa.Table, pa.RecordBatch)):
        raise TypeError(
            f"interpret_table takes a pyarrow Table or RecordBatch, not {type(table).__name__}"
        )
    if isinstance(table, pa.RecordBatch):
        batches = [table]
    else:
        batches = table.to_batches() or [pa.RecordBatch.from_pylist([], schema=table.schema)]
    return pa.Table.from_batches(
        list(interpret_batches(batches, **options)),
        schema=output_schema(table.schema, **options),
    )


@_keyword_errors
def interpret_frame(frame, **options):
    """A pandas DataFrame in, a pandas DataFrame out: `interpret_table` for Dask's
    `map_partitions` (meta: `output_frame()`). Needs pandas; takes the options of
    `interpret_batches`."""
    return interpret_table(_frame_table(frame), **options).to_pandas()


@_keyword_errors
def output_frame(names=None, **options):
    """An empty DataFrame with `interpret_frame`'s columns and types for an input with
    these column names (Dask's `meta`)."""
    return output_schema(names, **options).empty_table().to_pandas()


# --- inside ------------------------------------------------------------------------------


def _frame_table(frame) -> pa.Table:
    """A DataFrame as an Arrow table. A column of Python objects of several kinds (ids
    typed as numbers on some rows, a result typed as text on others) is read as text,
    as a CSV cell would be: each value as Python writes it, a missing one as missing."""
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass
    import pandas as pd

    columns = {}
    for name in frame.columns:
        column = frame[name]
        try:
            columns[name] = pa.Array.from_pandas(column)
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            columns[name] = pa.array(
                [None if _missing(v, pd) else str(v) for v in column.tolist()], pa.string()
            )
    return pa.table(columns)


def _missing(value: object, pd) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and value != value  # NaN


def _chained(first, rest: Iterator) -> Iterator:
    yield first
    yield from rest


class _Positions:
    """Input row positions of the rows given so far (0-based within one call)."""

    def __init__(self, counted: bool, first_line: int):
        self.counted = counted
        self.first_line = first_line
        self.seen = 0
        self.by_line: dict[int, int] = {}

    def note(self, piece) -> None:
        piece.first_position = self.seen
        if not self.counted:
            for offset, line in enumerate(piece.lines.tolist()):
                self.by_line.setdefault(line, self.seen + offset)
        self.seen += piece.cells.num_rows

    def rows_of(self, piece) -> list[int]:
        return list(range(piece.first_position, piece.first_position + piece.cells.num_rows))

    def row_of(self, line: int) -> int:
        return line - self.first_line if self.counted else self.by_line.get(line, -1)


def _noting(stream, positions: _Positions):
    for piece in stream:
        positions.note(piece)
        yield piece


def _outcomes(cells: list, rows: list[int], schema: pa.Schema) -> pa.RecordBatch:
    """Records' cells (one sequence of texts per column, as the batch CSV holds them)
    as a record batch of `schema`: `line` and `panel_date` typed (an empty cell is
    null), the rest text, then each record's input `row`."""
    arrays = []
    for field, column in zip(list(schema)[:-1], cells, strict=True):
        column = column if isinstance(column, pa.Array) else pa.array(column, pa.string())
        if field.type != pa.string():
            empty = pc.equal(column, "")
            column = pc.if_else(empty, pa.scalar(None, pa.string()), column).cast(field.type)
        arrays.append(column)
    arrays.append(pa.array(rows, pa.int64()))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
