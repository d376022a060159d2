"""Today's reports and batch records, byte for byte as the golden files keep them.

The rules may be rewritten (as data, evaluated per panel or as arrays) but a
user must not notice: every finding, text, piece of evidence and batch byte stays.
"""

from __future__ import annotations

import difflib

import pytest
from golden import outputs, read

OUTPUTS = dict(outputs())


@pytest.mark.parametrize("name", list(OUTPUTS))
def test_output_is_as_kept_in_the_golden_file(name):
    expected = read(name)
    actual = OUTPUTS[name]()
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), "golden", "now", lineterm="", n=1
        )
        pytest.fail(f"{name} differs from its golden file:\n" + "\n".join(list(diff)[:40]))
