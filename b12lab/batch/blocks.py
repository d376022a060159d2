"""A wide export's blocks decided on every core and written in order.

The columnar path (`b12lab.batch.columnar`) decides one block of lines at a
time. Once an export has a second block, blocks go whole to forked copies of
the process (`--jobs` less one), which parse, decide and render them (CSV
text, or JSON texts) and return them with what the summary counts and the
rejected cells of their refused rows; while the copies have enough blocks to
do, the process that reads the export decides the next one itself. It writes
the blocks in the order it read them, with the lines the row reader reads
(quoted cells, odd line ends) in their places between them.

Every copy holds the same plan, policy, ranges and rules, and decides the
keys it meets that it has not decided itself. A key's decision does not
depend on which process makes it, so the output is the same byte for byte as
one process writes (tests/test_blocks.py). A block a copy cannot finish (a
failure of any kind, or a copy that ended) is decided again here, where a
failure is reported as one process reports it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import replace

from b12lab.batch.columnar import (
    ColumnarInterpreter,
    Decided,
    block_table,
    csv_bytes,
    forked_pool,
    release_unused,
)
from b12lab.batch.drain import BatchSummary, Rendered, count_decided
from b12lab.vocab import OutputFormat

# The outputs whose blocks forked copies render (a Parquet writer takes decided blocks).
BLOCK_FORMATS = frozenset({OutputFormat.CSV, OutputFormat.NDJSON, OutputFormat.JSON})
# Blocks sent ahead of the one written next, per process (enough that none waits).
AHEAD = 2
CHECK_EVERY = 1.0  # seconds between checks that every copy still runs, while one is waited for
_FORKED = None  # what a forked copy inherits: (ColumnarInterpreter, delimiter, width, format)


def rendered(decided, output_format: OutputFormat, columns) -> Rendered:
    """A decided block as the drain loop writes it, with what the summary counts of it."""
    from b12lab.render.rows import block_json

    summary = BatchSummary()
    count_decided(summary, decided)
    is_csv = output_format is OutputFormat.CSV
    return Rendered(
        rows=len(decided.lines),
        csv=bytes(csv_bytes(decided)) if is_csv else None,
        json=None if is_csv else list(block_json(decided, columns)),
        summary=summary,
        cell_errors=[
            tuple(replace(error, error=None) for error in decided.errors[row].cell_errors)
            for row in sorted(decided.errors)
            if decided.errors[row].cell_errors
        ],
    )


class BlockDeciders:
    """This process and forked copies of it, deciding whole blocks: a block goes to a
    copy while the copies have fewer than `ahead` blocks to do, else this process
    decides it at once; results come back in the order the blocks were given. A copy
    that ends before its block is done (killed, out of memory) stops them all: every
    block not yet back is decided here, in order."""

    def __init__(self, columnar: ColumnarInterpreter, header, output_format, pool, copies):
        import multiprocessing

        self.columnar = columnar
        self.delimiter, self.width = header.delimiter, len(header.cells)
        self.format = output_format
        self.pool = pool
        self.copies = {child.pid for child in multiprocessing.active_children()}
        self.ahead = AHEAD * copies
        # (a copy's result or None, block, its first line, or the block decided here)
        self.pending: deque = deque()

    @classmethod
    def start(
        cls, columnar: ColumnarInterpreter, header, output_format: OutputFormat, workers: int
    ) -> BlockDeciders | None:
        """This process and `workers - 1` forked copies of it, which hold what `columnar`
        holds; None where a process cannot be forked here."""
        global _FORKED
        _FORKED = (columnar, header.delimiter, len(header.cells), output_format)
        columnar.decide_alone()  # its own deciders make way for the copies
        pool = forked_pool(workers - 1)
        return None if pool is None else cls(columnar, header, output_format, pool, workers - 1)

    def give(self, block: bytes, line: int) -> Iterator[Decided | Rendered]:
        """Decide a block (a copy, or this process when the copies have enough to do);
        yields the blocks given before it that are done, in order."""
        sent = sum(result is not None for result, *_ in self.pending)
        if self.pool is not None and sent < self.ahead:
            result = self.pool.apply_async(_decide, (block, line))
            self.pending.append((result, block, line, None))
        else:
            self.pending.append((None, block, line, self._here(block, line)))
        while self.pending and (self._done(self.pending[0]) or len(self.pending) > 2 * self.ahead):
            yield self._next()

    def flush(self) -> Iterator[Decided | Rendered]:
        """Every block given and not yet yielded, in order."""
        while self.pending:
            yield self._next()

    @staticmethod
    def _done(entry) -> bool:
        result, _, _, here = entry
        return here is not None or (result is not None and result.ready())

    def _here(self, block: bytes, line: int) -> Decided:
        return self.columnar.decide(*block_table(block, self.delimiter, self.width, line))

    def _next(self) -> Decided | Rendered:
        result, block, line, here = self.pending.popleft()
        if here is not None:
            return here
        while result is not None and not result.ready():
            result.wait(CHECK_EVERY)
            if not result.ready() and self._lost():
                self.close()  # the blocks not yet back are decided here
                break
        done = None
        if result is not None and result.ready():
            try:
                done = result.get()
            except Exception:  # e.g. a result that could not be sent back
                done = None
        if done is None:  # not decided by a copy: decided here, where a failure is reported
            return self._here(block, line)
        return done

    def _lost(self) -> bool:
        import multiprocessing

        return not self.copies <= {child.pid for child in multiprocessing.active_children()}

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None


def _decide(block: bytes, line: int) -> Rendered | None:
    columnar, delimiter, width, output_format = _FORKED
    try:
        decided = columnar.decide(*block_table(block, delimiter, width, line))
        done = rendered(decided, output_format, columnar.rows.columns)
    except Exception:  # the parent decides the block again and reports its failure
        return None
    release_unused()
    return done
