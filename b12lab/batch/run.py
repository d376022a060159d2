"""`b12lab batch`: an export streamed through RowInterpreter into CSV, NDJSON or JSON.

Memory stays flat: one line is read, one record written, at a time (rows of a
long export or of --timeline that are not grouped are first put in group order
in bounded memory, `b12lab.batch.grouping`).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from contextlib import ExitStack

from b12lab import phases
from b12lab.batch import drain
from b12lab.batch.drain import BatchSummary, Progress, export_interpreter, write_records
from b12lab.batch.options import BatchOptions
from b12lab.batch.rows import RowInterpreter
from b12lab.errors import InputError
from b12lab.inputs.export import (
    ReadStats,
    looks_binary,
    open_export,
    read_header,
    records,
    text_lines,
)
from b12lab.output import check_targets
from b12lab.ranges import Ranges
from b12lab.reading.sources.detect import detect_input
from b12lab.vocab import InputFormat, InputKind


def run_batch(
    source: str, ranges: Ranges, options: BatchOptions | None = None, **given
) -> BatchSummary:
    """Interpret the export `source` (a path, or `-` for stdin) under `options` (or the
    keyword options of `BatchOptions`: output, output_format, layout, mapping, ...)."""
    options = BatchOptions.of(options, **given)
    summary = _run_batch(source, ranges, options)
    summary.notes[:0] = options.name_notes()  # an output named for another format
    return summary


def _run_batch(source: str, ranges: Ranges, options: BatchOptions) -> BatchSummary:
    output, errors_path = options.output, options.errors_path
    check_targets(
        [("input export", source)],
        [("output", output)] + ([("errors file", errors_path)] if errors_path else []),
    )
    stream, label, size = open_export(source)
    _, kind = batch_input(stream, label, options.input_format)
    if options.keep:
        check_keep(kind)
    if kind.is_table:  # Parquet or Arrow IPC: b12lab.inputs.arrow
        from b12lab.inputs.arrow import run_arrow_batch

        return run_arrow_batch(stream, source, label, kind, ranges, options)
    if kind.is_message:
        return run_message_batch(stream, label, kind, ranges, options)
    summary = BatchSummary(noun=options.noun)
    stats = ReadStats()
    with ExitStack() as stack:
        if source != "-":
            stack.callback(stream.close)
        if not hasattr(stream, "peek"):  # one buffer for the header and the blocks after it
            stream = io.BufferedReader(stream)
        lines = text_lines(stream, stats, label)
        header, rest = read_header(lines, label)
        delimiter, skipped = header.delimiter, header.lines
        if looks_binary(header.text):
            raise InputError(
                f"export {label} is not a CSV text file (binary data?)",
                fix="give a CSV export; spreadsheets need 'Save as CSV' first",
            )
        interpreter = export_interpreter(header.cells, ranges, summary, options)
        bar = Progress(options.progress, size, label)
        stack.callback(bar.stop)
        stack.enter_context(phases.shown_on(bar))
        read = [0]  # rows read, the count shown when the size is not known (stdin)

        def rows() -> Iterator:
            for record in records(rest, delimiter, skipped):
                read[0] += 1
                yield record.line, record.cells, record.problem

        bar.phase("reading", size, lambda: stats.bytes_read if size is not None else read[0])

        def read_so_far() -> None:  # the columnar path reads ahead of the rows it writes
            bar.tick(stats.bytes_read if size is not None else summary.panels)

        # Lines ended by a lone CR ("\r", old Mac exports) were split by the line reader
        # after it had read past them: the row path reads those.
        lone_cr = header.text.endswith("\r")
        by_columns = (
            options.output_format.by_columns
            and not stats.utf16
            and not lone_cr
            and not _typed(stream)
        )
        if by_columns and drain.reads_by_columns(interpreter):
            items = _columnar_items(interpreter, stream, header, stats, options, stack)
            ticks = read_so_far
        else:
            items = interpreter(_checked(rows(), source, label, interpreter))
            ticks = bar.tick
        write_records(stack, items, summary, options, progress=ticks, columns=interpreter.columns)
    summary.notes.extend(interpreter.plan.notes)  # includes what the rows showed (decimal mark)
    summary.notes.extend(summary.assumption_lines())
    if stats.cp1252_lines:
        summary.notes.append(f"{stats.cp1252_lines} lines were read as Windows-1252")
    if stats.nul_lines:
        summary.notes.append(f"{stats.nul_lines} lines held NUL bytes, which were removed")
    return summary


def _typed(stream) -> bool:
    """Rows typed at a terminal: Ctrl-D ends them once, where the row reader stops (a
    block reader would wait for a second one); few rows, read by the row path."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _checked(rows: Iterator, source: str, label: str, interpreter: RowInterpreter):
    """A regular file whose rows must be grouped is read once first: already grouped?"""
    from b12lab.batch.grouping import CheckedRows, file_is_grouped, row_levels

    levels = row_levels(interpreter.plan, interpreter.timeline, interpreter.policy.date_order)
    grouped = file_is_grouped(source, label, levels) if levels and source != "-" else None
    if grouped is not None:
        phases.restore()
    return rows if grouped is None else CheckedRows(rows, grouped)


def check_keep(kind: InputKind) -> None:
    """--keep copies the columns of an export (CSV, Parquet, Arrow); a message has none.
    (Whether the output format has a place for them, `BatchOptions` checks.)"""
    if not kind.has_columns:
        raise InputError(
            f"--keep copies columns of a CSV export; a {kind} input has no export columns",
            fix="drop --keep (patient ids and dates are in every record already)",
        )


def _head(stream, label: str) -> bytes:
    """The first bytes of an export (not consumed); one line and exit 2 when unreadable."""
    from b12lab.messages import head_of

    try:
        return head_of(stream)
    except OSError as error:
        raise InputError(
            f"cannot read export {label}: {error.strerror or error}",
            fix="check the file and the disk it is on",
        ) from None


def batch_input(stream, label: str, input_format: InputFormat | str) -> tuple[bytes, InputKind]:
    """The first bytes of an export, and what batch reads it as: a table (Parquet,
    Arrow), a message kind, or CSV; a panel file is refused, naming `interpret`."""
    input_format = InputFormat(input_format)
    head = _head(stream, label)
    kind = detect_input(head, label, input_format)
    table_bytes = head.startswith((b"PAR1", b"ARROW1"))
    if table_bytes and not kind.is_table:
        raise InputError(
            f"{label} is a Parquet or Arrow file, not {input_format}",
            fix="give --input-format auto (or parquet, or arrow)",
        )
    if kind.is_table or kind.is_message:
        return head, kind
    if input_format in (InputFormat.YAML, InputFormat.JSON):
        raise InputError(
            f"--input-format {input_format}: batch reads exports, not a panel file",
            fix=f"use b12lab interpret {label} for one patient's panel file",
        )
    if kind is InputKind.JSON_PANEL:
        raise InputError(
            f"{label} is JSON but not FHIR (no resourceType): batch reads exports, "
            "not a panel file",
            fix=f"use b12lab interpret {label} for one patient's panel file",
        )
    return head, InputKind.CSV


def run_message_batch(
    stream, label: str, kind: InputKind, ranges: Ranges, options: BatchOptions
) -> BatchSummary:
    """FHIR JSON, FHIR NDJSON or HL7 v2: one record per panel and per unreadable record."""
    from b12lab.messages import ObservationInterpreter, read_observations, skipped_line

    summary = BatchSummary(noun=options.noun)
    with ExitStack() as stack:
        if stream is not sys.stdin.buffer:
            stack.callback(stream.close)
        source = read_observations(stream, kind, label)
        interpreter = ObservationInterpreter.for_messages(
            ranges, mapping=options.mapping, **options.but(keep=()).interpreter_options()
        )
        bar = Progress(options.progress, None, label, unit="panels")
        stack.callback(bar.stop)
        stack.enter_context(phases.shown_on(bar))
        bar.phase("reading", None, lambda: summary.panels)
        write_records(
            stack,
            interpreter(source),
            summary,
            options,
            progress=bar.tick,
            columns=interpreter.columns,
        )
    for line in (
        skipped_line(source.skipped),
        skipped_line(interpreter.skipped_tests, "panels of other tests only, skipped"),
    ):
        if line:
            summary.notes.append(line)
    for message, count in interpreter.unread_tests.items():
        summary.notes.append(f"{message} ({count:,} {'panel' if count == 1 else 'panels'})")
    summary.notes.extend(summary.assumption_lines())
    return summary


def _columnar_items(
    interpreter: RowInterpreter, stream, header, stats, options: BatchOptions, stack
) -> Iterator:
    """A wide CSV export through the columnar path: decided blocks, and the records of
    the lines the row path reads (the same rows the row path would give), in order.

    With more than one worker, the first block is decided here and the next ones by
    forked copies of this process, which hold what the first decided
    (`b12lab.batch.blocks`); where that cannot be, new keys are decided by `workers`
    processes. They all stop when the run's `stack` closes."""
    from b12lab.batch.blocks import BLOCK_FORMATS, BlockDeciders
    from b12lab.batch.columnar import ColumnarInterpreter, block_table, wide_segments

    workers, output_format = options.workers, options.output_format
    by_blocks = workers >= 2 and output_format in BLOCK_FORMATS
    columnar = ColumnarInterpreter(interpreter, workers)
    stack.callback(columnar.close)
    deciders = None
    width = len(header.cells)
    first = None  # the first block, decided here if it is the only one before the end

    def here(block: bytes, line: int):
        return columnar.decide(*block_table(block, header.delimiter, width, line))

    for segment in wide_segments(stream, header, interpreter, stats):
        if segment[0] == "block":
            _, block, line = segment
            if by_blocks and deciders is None:
                if first is None:
                    first = (block, line)
                    continue
                deciders = BlockDeciders.start(columnar, header, output_format, workers)
                by_blocks = deciders is not None
                if deciders is not None:
                    stack.callback(deciders.close)
                    yield from deciders.give(*first)
                else:
                    yield here(*first)
                first = None
            if deciders is not None:
                yield from deciders.give(block, line)
            else:
                yield here(block, line)
            continue
        if first is not None:
            yield here(*first)
            first = None
        if deciders is not None:
            yield from deciders.flush()  # every block before the row path's lines
        record = segment[1]
        yield interpreter._finish(interpreter._wide_row(record.line, record.cells, record.problem))
    if first is not None:
        yield here(*first)
    if deciders is not None:
        yield from deciders.flush()
