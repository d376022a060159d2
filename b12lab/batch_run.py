"""`b12lab batch`: an export streamed through RowInterpreter into CSV, NDJSON or JSON.

Memory stays flat: one line is read, one record written, at a time (rows of a
long export or of --timeline that are not grouped are first put in group order
in bounded memory, `b12lab.grouping`).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack

from b12lab import drain, phases
from b12lab.batch import AUTO, RowInterpreter
from b12lab.drain import (
    OUTCOME_FORMATS,
    BatchSummary,
    Progress,
    check_output,
    export_interpreter,
    write_records,
)
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
from b12lab.reading.policy import ReadPolicy


def run_batch(
    source: str,
    ranges: Ranges,
    *,
    output: str | None = None,
    output_format: str = "csv",
    layout: str = "auto",
    mapping: Mapping[str, str] | None = None,
    guideline: str | None = None,
    errors_path: str | None = None,
    progress: bool = True,
    timeline: bool = False,
    policy: ReadPolicy | None = None,
    today=None,
    input_format: str = "auto",
    keep: Sequence[str] = (),
) -> BatchSummary:
    """`keep`: the --keep options (COL[,COL...]), export columns copied into every record."""
    check_output(output_format, output)
    check_targets(
        [("input export", source)],
        [("output", output)] + ([("errors file", errors_path)] if errors_path else []),
    )
    stream, label, size = open_export(source)
    run_options = {
        "output_format": output_format,
        "input_format": input_format,
        "layout": layout,
        "mapping": dict(mapping or {}),
        "guideline": guideline,
        "timeline": timeline,
        "keep": list(keep),
        "policy": vars(policy) if policy is not None else None,
        "as_of": today,
    }
    shared = dict(  # what every kind of input takes
        output=output,
        output_format=output_format,
        mapping=mapping,
        guideline=guideline,
        errors_path=errors_path,
        progress=progress,
        timeline=timeline,
        policy=policy,
        today=today,
        run_options=run_options,
    )
    warehouse = _warehouse_kind(stream, label, input_format)
    if warehouse is not None:  # Parquet or Arrow IPC: b12lab.inputs.arrow
        from b12lab.inputs.arrow import run_arrow_batch

        if keep:
            check_keep(warehouse, output_format)
        return run_arrow_batch(
            stream, source, label, warehouse, ranges, layout=layout, keep=keep, **shared
        )
    _, kind = source_kind(stream, label, input_format)
    if keep:
        check_keep(kind, output_format)
    if kind != "csv":
        return run_message_batch(stream, label, kind, ranges, **shared)
    summary = BatchSummary(noun="patient" if timeline else "panel")
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
        interpreter = export_interpreter(
            header.cells,
            ranges,
            summary,
            layout=layout,
            mapping=mapping,
            guideline=guideline,
            policy=policy,
            output_format=output_format,
            timeline=timeline,
            today=today,
            keep=keep,
        )
        bar = Progress(progress, size, label)
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

        if output_format == "csv" and not stats.utf16 and drain.reads_by_columns(interpreter):
            items, ticks = _columnar_items(interpreter, stream, header, stats), read_so_far
        else:
            items = interpreter(_checked(rows(), source, label, interpreter))
            ticks = bar.tick
        write_records(
            stack,
            items,
            summary,
            output=output,
            output_format=output_format,
            errors_path=errors_path,
            progress=ticks,
            columns=interpreter.columns,
            run_options=run_options,
        )
    summary.notes.extend(interpreter.plan.notes)  # includes what the rows showed (decimal mark)
    summary.notes.extend(summary.assumption_lines())
    if stats.cp1252_lines:
        summary.notes.append(f"{stats.cp1252_lines} lines were read as Windows-1252")
    if stats.nul_lines:
        summary.notes.append(f"{stats.nul_lines} lines held NUL bytes, which were removed")
    return summary


def _checked(rows: Iterator, source: str, label: str, interpreter: RowInterpreter):
    """A regular file whose rows must be grouped is read once first: already grouped?"""
    from b12lab.grouping import CheckedRows, file_is_grouped, row_levels

    levels = row_levels(interpreter.plan, interpreter.timeline, interpreter.policy.date_order)
    grouped = file_is_grouped(source, label, levels) if levels and source != "-" else None
    if grouped is not None:
        phases.restore()
    return rows if grouped is None else CheckedRows(rows, grouped)


def check_keep(kind: str, output_format: str | None = None) -> None:
    """--keep copies the columns of an export (CSV, Parquet, Arrow) into CSV, NDJSON or
    JSON records."""
    if kind not in ("csv", "parquet", "arrow"):
        raise InputError(
            f"--keep copies columns of a CSV export; a {kind} input has no export columns",
            fix="drop --keep (patient ids and dates are in every record already)",
        )
    if output_format in ("fhir-ndjson", "text"):
        raise InputError(
            "--keep is written to csv, ndjson and json output; "
            + ("a FHIR Bundle" if output_format == "fhir-ndjson" else "the text table")
            + " has no place for export columns",
            fix="use --format ndjson or csv with --keep",
        )


def _warehouse_kind(stream, label: str, input_format: str) -> str | None:
    """ "parquet" or "arrow" for a Parquet or Arrow IPC input (forced, content, extension)."""
    if input_format not in ("auto", "parquet", "arrow"):
        return None
    from b12lab.inputs.arrow import arrow_kind

    return arrow_kind(_head(stream, label), label, input_format)


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


def source_kind(stream, label: str, input_format: str) -> tuple[bytes, str]:
    """The first bytes of an export, and what batch reads them as: a message kind, or "csv"."""
    from b12lab.messages import input_kind, is_message

    head = _head(stream, label)
    if input_format in ("parquet", "arrow") or head.startswith((b"PAR1", b"ARROW1")):
        raise InputError(  # run_batch reads these before asking; --plan reads text exports
            f"{label} is a Parquet or Arrow file; --plan reads CSV exports and messages",
            fix=f"run b12lab batch {label} without --plan",
        )
    kind = input_kind(head, input_format)
    if is_message(kind):
        return head, kind
    if input_format in ("yaml", "json"):
        raise InputError(
            f"--input-format {input_format}: batch reads exports, not a panel file",
            fix=f"use b12lab interpret {label} for one patient's panel file",
        )
    if kind == "json-panel":
        raise InputError(
            f"{label} is JSON but not FHIR (no resourceType): batch reads exports, "
            "not a panel file",
            fix=f"use b12lab interpret {label} for one patient's panel file",
        )
    return head, "csv"


def run_message_batch(
    stream,
    label: str,
    kind: str,
    ranges: Ranges,
    *,
    output: str | None = None,
    output_format: str = "csv",
    mapping: Mapping[str, str] | None = None,
    guideline: str | None = None,
    errors_path: str | None = None,
    progress: bool = True,
    timeline: bool = False,
    policy: ReadPolicy | None = None,
    today=None,
    run_options: Mapping[str, object] | None = None,
) -> BatchSummary:
    """FHIR JSON, FHIR NDJSON or HL7 v2: one record per panel and per unreadable record."""
    from b12lab.messages import ObservationInterpreter, read_observations, skipped_line

    summary = BatchSummary(noun="patient" if timeline else "panel")
    with ExitStack() as stack:
        if stream is not sys.stdin.buffer:
            stack.callback(stream.close)
        source = read_observations(stream, kind, label)
        interpreter = ObservationInterpreter.for_messages(
            ranges,
            mapping=mapping,
            guideline=guideline,
            policy=policy or ReadPolicy(decimal=AUTO),
            full_reports=output_format not in OUTCOME_FORMATS,
            timeline=timeline,
            today=today,
        )
        bar = Progress(progress, None, label, unit="panels")
        stack.callback(bar.stop)
        stack.enter_context(phases.shown_on(bar))
        bar.phase("reading", None, lambda: summary.panels)
        write_records(
            stack,
            interpreter(source),
            summary,
            output=output,
            output_format=output_format,
            errors_path=errors_path,
            progress=bar.tick,
            columns=interpreter.columns,
            run_options=run_options,
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


def _columnar_items(interpreter: RowInterpreter, stream, header, stats) -> Iterator:
    """A wide CSV export through the columnar path: decided blocks, and the records of
    the lines the row path reads (the same rows the row path would give)."""
    from b12lab.columnar import ColumnarInterpreter, wide_segments

    columnar = ColumnarInterpreter(interpreter)
    for segment in wide_segments(stream, header, interpreter, stats):
        if segment[0] == "table":
            yield columnar.decide(segment[1], segment[2])
            continue
        record = segment[1]
        yield interpreter._finish(interpreter._wide_row(record.line, record.cells, record.problem))
