"""`b12lab batch`: an export in, one record per panel out, in order, in bounded memory.

The modules, in the order a run passes through them:

- `options`: one frozen `BatchOptions`, checked when built, for the CLI,
  `run_batch`, `interpret_rows` and the table API;
- `run`: `run_batch`, which finds what the input is and picks its path;
- `grouping`: the rows of one panel (one patient with --timeline) brought
  together, whatever their order in the file, in bounded memory;
- `rows`: the row path, `RowInterpreter` (cells -> panel -> decision -> record),
  pure and picklable for Dask or Spark partitions, and `interpret_rows`;
- `columnar`: wide exports decided a block at a time on Apache Arrow, each
  distinct cell read once, with the row path's records byte for byte;
- `drain`: the one loop that writes the records (atomic files), counts them for
  the summary and shows progress, for every source;
- `table`: the same pipeline as Arrow tables and record batches in and out;
- `plan`: `--plan`, what a run would do, without deciding a panel.

pyarrow, numpy and duckdb are imported only by `columnar`, `table` and the
functions that need them, never by importing this package: the names below are
looked up on first use, so `b12lab interpret` starts without them.
"""

__all__ = ["BatchOptions", "RowInterpreter", "interpret_rows", "run_batch"]

_EXPORTS = {
    "BatchOptions": "b12lab.batch.options",
    "RowInterpreter": "b12lab.batch.rows",
    "interpret_rows": "b12lab.batch.rows",
    "run_batch": "b12lab.batch.run",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'b12lab.batch' has no attribute {name!r}")
