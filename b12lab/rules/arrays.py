"""The rules' conditions evaluated over whole columns of facts (numpy), for batch.

It walks the same parsed tree as the one-panel evaluator
(`b12lab.rules.condition.evaluate`), with the same meaning: a comparison
with no value is false. Columns are numpy arrays: bool for yes/no facts,
float64 with NaN for none for numbers, object arrays with None for texts.
Only this module imports numpy; `interpret` never loads it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from b12lab.rules.condition import All, Any, Compare, Constant, Member, Name, Not

_OPS = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}


def _present(values: np.ndarray) -> np.ndarray:
    if values.dtype == object:
        return np.array([v is not None for v in values], dtype=bool)
    if values.dtype.kind == "f":
        return ~np.isnan(values)
    return np.ones(values.shape, dtype=bool)


def _column(node: object, columns: Mapping[str, np.ndarray], size: int) -> np.ndarray:
    if isinstance(node, Name):
        return np.asarray(columns[node.name])
    if isinstance(node, Constant):
        value = node.value
        if value is None:
            return np.full(size, np.nan)
        if isinstance(value, str):
            column = np.empty(size, dtype=object)
            column[:] = value
            return column
        return np.full(size, value)
    return evaluate(node, columns, size)


def evaluate(node: object, columns: Mapping[str, np.ndarray], size: int) -> np.ndarray:
    """The condition for every row at once: a bool array of length `size`."""
    if isinstance(node, Name):
        return np.asarray(columns[node.name], dtype=bool)
    if isinstance(node, All):
        result = np.ones(size, dtype=bool)
        for operand in node.operands:
            result &= evaluate(operand, columns, size)
        return result
    if isinstance(node, Any):
        result = np.zeros(size, dtype=bool)
        for operand in node.operands:
            result |= evaluate(operand, columns, size)
        return result
    if isinstance(node, Not):
        return ~evaluate(node.operand, columns, size)
    if isinstance(node, Compare):
        left = _column(node.left, columns, size)
        right = _column(node.right, columns, size)
        present = _present(left) & _present(right)
        result = np.zeros(size, dtype=bool)
        result[present] = _OPS[node.op](left[present], right[present]).astype(bool)
        return result
    if isinstance(node, Member):
        values = _column(node.operand, columns, size)
        present = _present(values)
        found = np.zeros(size, dtype=bool)
        for member in node.values:
            found[present] |= (values[present] == member).astype(bool)
        return found != node.negated
    raise TypeError(f"no array evaluation for {type(node).__name__}")


def outcomes(logic, columns: Mapping[str, np.ndarray], size: int) -> np.ndarray:
    """Which outcome of a data rule holds on each row, as `RuleLogic.decide` says for one:
    -1 none, i for its i-th `unresolved`, len(unresolved) + j for its j-th variant."""
    result = np.full(size, -1, dtype=np.int64)
    undecided = np.ones(size, dtype=bool)
    for index, outcome in enumerate((*logic.unresolved, *logic.variants)):
        holds = evaluate(outcome.when, columns, size) & undecided
        result[holds] = index
        undecided &= ~holds
    return result
