"""b12lab: what vitamin B12 status implies for platelets, neutrophils and ferritin.

from b12lab import interpret
report = interpret({"b12": "180 pg/mL", "platelets": "95"}, sex="female")
report.b12_status            # "deficient"
"""

__version__ = "0.1.0"
__all__ = [
    "interpret",
    "interpret_batches",
    "interpret_frame",
    "interpret_record",
    "interpret_rows",
    "interpret_table",
    "load_ranges",
    "output_frame",
    "output_schema",
]

_EXPORTS = {
    "interpret": "b12lab.api",
    "interpret_record": "b12lab.api",
    "interpret_rows": "b12lab.batch",
    "load_ranges": "b12lab.ranges",
    # Arrow tables and batches (pyarrow is imported only when one of these is used)
    "interpret_table": "b12lab.batch.table",
    "interpret_batches": "b12lab.batch.table",
    "output_schema": "b12lab.batch.table",
    "interpret_frame": "b12lab.batch.table",
    "output_frame": "b12lab.batch.table",
}


def __getattr__(name: str):
    # Imported on first use, so that `b12lab --version` and the CLI start fast.
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'b12lab' has no attribute {name!r}")
