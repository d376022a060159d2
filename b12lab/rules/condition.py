"""The condition language of the rules file, and its one-panel evaluator.

A condition is a Python expression restricted to:

- fact names, dotted (`platelets.low`, `b12.undecided`, `therapy_day`) and the
  thresholds of the ranges file (`threshold.rebound_window_first_day`);
- constants: numbers, strings, `true`/`false`/`none` (any case);
- `and`, `or`, `not`; comparisons `<`, `<=`, `>`, `>=`, `==`, `!=` (chains
  such as `a <= therapy_day <= b` too); `in` and `not in` a tuple of constants.

Nothing else parses: no calls, attributes of values, subscripts or arithmetic.
The text is parsed with Python's own `ast` (a grammar everyone knows, no
dependency) and turned into the small tree below; both evaluators walk that
tree, this one for one panel and `b12lab.rules.arrays` for whole columns, so
the two cannot drift apart. A comparison with no value (a fact that is none)
is false, `!=` included, and so is `in`: `not (...)` says the opposite.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable, Mapping

from b12lab.errors import B12labError


class RuleFileError(B12labError):
    """A rules file that cannot be used: the dotted path of the problem and the fix."""

    def __init__(self, path: str, problem: str, fix: str = "", source: str = ""):
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{path}: {problem}", fix=fix)
        self.path = path


class _Node:
    """A node of a parsed condition: an immutable value, equal to a node of its kind
    with equal fields. `evaluate` keeps the node's compiled form on it; a copy sent to
    another process (pickled) leaves it behind and compiles again.

    Plain classes rather than dataclasses: every one-patient `interpret` defines them
    at start-up, where seven frozen dataclasses would cost about 4 ms.
    """

    fields: tuple[str, ...] = ()

    def __init__(self, *values: object):
        for name, value in zip(self.fields, values, strict=True):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a condition's {type(self).__name__} cannot be changed")

    def values_of(self) -> tuple:
        return tuple(getattr(self, name) for name in self.fields)

    def __eq__(self, other: object) -> bool:
        return other.__class__ is self.__class__ and other.values_of() == self.values_of()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.values_of()))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.fields)
        return f"{type(self).__name__}({shown})"

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_compiled", "_uses")}


class Name(_Node):
    fields = ("name",)
    name: str


class Constant(_Node):
    fields = ("value",)
    value: object


class Not(_Node):
    fields = ("operand",)
    operand: object


class All(_Node):
    fields = ("operands",)
    operands: tuple


class Any(_Node):
    fields = ("operands",)
    operands: tuple


class Compare(_Node):
    """`left op right`; a chain `a < b < c` is an All of two Compares."""

    fields = ("op", "left", "right")
    op: str
    left: object
    right: object


class Member(_Node):
    """`operand in (values)`, or `not in` when `negated`."""

    fields = ("operand", "values", "negated")
    operand: object
    values: tuple
    negated: bool

    def __init__(self, operand: object, values: tuple, negated: bool = False):
        super().__init__(operand, values, negated)


_OPS = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
}
_WORDS = {"true": True, "false": False, "none": None}


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


class Parser:
    """Parses conditions against the names a rule may use, with their kinds.

    `kinds` maps each name to "bool", "number" or "text"; a name not in it is
    refused with the closest names as a suggestion.
    """

    def __init__(self, kinds: Mapping[str, str]):
        self.kinds = kinds

    def parse(self, text: object, path: str, source: str = "") -> object:
        if not isinstance(text, str) or not text.strip():
            raise RuleFileError(path, "expected a condition (text)", source=source)
        try:
            tree = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as error:
            raise RuleFileError(
                path,
                f"cannot parse condition '{text}' ({error.msg})",
                fix="write it with and, or, not, comparisons and in",
                source=source,
            ) from None
        self._path, self._source, self._text = path, source, text
        node = self._node(tree)
        self._boolean(node)
        return node

    def _fail(self, problem: str, fix: str = "") -> RuleFileError:
        return RuleFileError(self._path, problem, fix=fix, source=self._source)

    def _node(self, tree: ast.AST) -> object:
        if isinstance(tree, ast.BoolOp):
            operands = tuple(self._node(v) for v in tree.values)
            for operand in operands:
                self._boolean(operand)
            return All(operands) if isinstance(tree.op, ast.And) else Any(operands)
        if isinstance(tree, ast.UnaryOp) and isinstance(tree.op, ast.Not):
            operand = self._node(tree.operand)
            self._boolean(operand)
            return Not(operand)
        if isinstance(tree, ast.UnaryOp) and isinstance(tree.op, ast.USub):
            inner = self._node(tree.operand)
            if isinstance(inner, Constant) and isinstance(inner.value, (int, float)):
                return Constant(-inner.value)
        if isinstance(tree, ast.Compare):
            return self._compare(tree)
        if isinstance(tree, ast.Constant) and isinstance(tree.value, (int, float, str)):
            return Constant(tree.value)
        dotted = _dotted(tree)
        if dotted is not None:
            if dotted.lower() in _WORDS:
                return Constant(_WORDS[dotted.lower()])
            if dotted not in self.kinds:
                close = difflib.get_close_matches(dotted, list(self.kinds), n=3, cutoff=0.6)
                raise self._fail(
                    f"unknown fact '{dotted}' in '{self._text}'",
                    fix=f"did you mean {', '.join(close)}?"
                    if close
                    else "see the facts listed in docs/writing-rules.md",
                )
            return Name(dotted)
        raise self._fail(
            f"'{ast.unparse(tree)}' is not allowed in a condition ('{self._text}')",
            fix="use fact names, constants, and, or, not, comparisons and in",
        )

    def _compare(self, tree: ast.Compare) -> object:
        if len(tree.ops) > 1 and any(isinstance(o, (ast.In, ast.NotIn)) for o in tree.ops):
            raise self._fail(
                f"'{ast.unparse(tree)}' chains 'in' with another comparison",
                fix="join them with and",
            )
        parts = [self._node(tree.left)]
        for op, comparator in zip(tree.ops, tree.comparators, strict=True):
            member = isinstance(op, (ast.In, ast.NotIn))
            parts.append(None if member else self._node(comparator))
        links = []
        for index, op in enumerate(tree.ops):
            left, right = parts[index], parts[index + 1]
            if isinstance(op, (ast.In, ast.NotIn)):
                values = self._members(tree.comparators[index])
                links.append(Member(left, values, isinstance(op, ast.NotIn)))
                continue
            if type(op) not in _OPS:
                raise self._fail(f"comparison '{ast.unparse(tree)}' is not allowed")
            kinds = {self._kind(left), self._kind(right)} - {"none"}
            if len(kinds) > 1 or ("bool" in kinds and _OPS[type(op)] not in ("==", "!=")):
                raise self._fail(
                    f"'{ast.unparse(tree)}' compares a {' with a '.join(sorted(kinds))}",
                    fix="compare numbers with numbers and texts with texts",
                )
            links.append(Compare(_OPS[type(op)], left, right))
        return links[0] if len(links) == 1 else All(tuple(links))

    def _members(self, tree: ast.AST) -> tuple:
        if isinstance(tree, (ast.Tuple, ast.List, ast.Set)):
            values = []
            for element in tree.elts:
                node = self._node(element)
                if not isinstance(node, Constant):
                    break
                values.append(node.value)
            else:
                return tuple(values)
        raise self._fail(
            f"'in' needs a list of constants, not '{ast.unparse(tree)}'",
            fix="write e.g. platelets.grade in (3, 4)",
        )

    def _kind(self, node: object) -> str:
        if isinstance(node, Name):
            return self.kinds[node.name]
        if isinstance(node, Constant):
            if node.value is None:
                return "none"
            if isinstance(node.value, bool):
                return "bool"
            return "text" if isinstance(node.value, str) else "number"
        return "bool"

    def _boolean(self, node: object) -> None:
        if self._kind(node) != "bool":
            raise self._fail(
                f"'{self._text}' is not true or false: a {self._kind(node)} is not a condition",
                fix="compare it, e.g. therapy_day >= 7",
            )


def to_tree(node: object) -> list:
    """A parsed condition as plain JSON lists (the compiled rules cache keeps these, so
    that start-up does not parse every condition again)."""
    if isinstance(node, Name):
        return ["name", node.name]
    if isinstance(node, Constant):
        return ["const", node.value]
    if isinstance(node, Not):
        return ["not", to_tree(node.operand)]
    if isinstance(node, (All, Any)):
        return ["and" if isinstance(node, All) else "or", [to_tree(n) for n in node.operands]]
    if isinstance(node, Compare):
        return ["compare", node.op, to_tree(node.left), to_tree(node.right)]
    if isinstance(node, Member):
        return ["in", to_tree(node.operand), list(node.values), node.negated]
    raise TypeError(f"no tree for {type(node).__name__}")


def from_tree(tree: list) -> object:
    """The condition `to_tree` wrote."""
    kind = tree[0]
    if kind == "name":
        return Name(tree[1])
    if kind == "const":
        return Constant(tree[1])
    if kind == "not":
        return Not(from_tree(tree[1]))
    if kind in ("and", "or"):
        operands = tuple(from_tree(t) for t in tree[1])
        return All(operands) if kind == "and" else Any(operands)
    if kind == "compare":
        return Compare(tree[1], from_tree(tree[2]), from_tree(tree[3]))
    if kind == "in":
        return Member(from_tree(tree[1]), tuple(tree[2]), tree[3])
    raise ValueError(f"unknown condition node {kind!r}")


def comparisons(node: object) -> list[Compare | Member]:
    """Every comparison and `in` test of a condition, in the order written."""
    if isinstance(node, (Compare, Member)):
        return [node]
    if isinstance(node, (All, Any)):
        return [c for operand in node.operands for c in comparisons(operand)]
    if isinstance(node, Not):
        return comparisons(node.operand)
    return []


def names(node: object) -> set[str]:
    """Every fact and threshold a condition names."""
    if isinstance(node, Name):
        return {node.name}
    if isinstance(node, (All, Any)):
        return set().union(*(names(n) for n in node.operands))
    if isinstance(node, Not):
        return names(node.operand)
    if isinstance(node, Compare):
        return names(node.left) | names(node.right)
    if isinstance(node, Member):
        return names(node.operand)
    return set()


def constants(node: object) -> dict[str, set]:
    """The values each name is compared with (the cut points a condition distinguishes)."""
    found: dict[str, set] = {}
    if isinstance(node, (All, Any)):
        for operand in node.operands:
            for name, values in constants(operand).items():
                found.setdefault(name, set()).update(values)
    elif isinstance(node, Not):
        found = constants(node.operand)
    elif isinstance(node, Compare):
        for one, other in ((node.left, node.right), (node.right, node.left)):
            if isinstance(one, Name) and isinstance(other, (Constant, Name)):
                found.setdefault(one.name, set()).add(other)
    elif isinstance(node, Member) and isinstance(node.operand, Name):
        found[node.operand.name] = {Constant(v) for v in node.values}
    return found


# A condition is walked as a tree for its first uses (one patient's `interpret` uses
# each once, and compiling costs more than walking), then compiled (a batch uses each
# condition once per distinct decision).
WALKED_USES = 8


def evaluate(node: object, facts: Mapping[str, object]) -> object:
    """The condition's value for one panel's facts.

    After `WALKED_USES` uses the tree is translated into one Python expression
    (`_python`, the same meaning), compiled and kept on the node: the rules of a
    batch then run as bytecode, not as a walk of the tree.
    """
    compiled = node.__dict__.get("_compiled")
    if compiled is not None:
        return compiled(facts)
    uses = node.__dict__.get("_uses", 0) + 1
    if uses > WALKED_USES:
        compiled = _compiled(_python(node, [0]))
        object.__setattr__(node, "_compiled", compiled)
        return compiled(facts)
    object.__setattr__(node, "_uses", uses)
    return walk(node, facts)


def walk(node: object, facts: Mapping[str, object]) -> object:
    """The condition's value for one panel's facts, by walking its tree."""
    if isinstance(node, Name):
        return facts[node.name]
    if isinstance(node, Constant):
        return node.value
    if isinstance(node, All):
        return all(walk(n, facts) for n in node.operands)
    if isinstance(node, Any):
        return any(walk(n, facts) for n in node.operands)
    if isinstance(node, Not):
        return not walk(node.operand, facts)
    if isinstance(node, Compare):
        left, right = walk(node.left, facts), walk(node.right, facts)
        if left is None or right is None:
            return False
        return bool(_COMPARE[node.op](left, right))
    if isinstance(node, Member):
        value = walk(node.operand, facts)
        found = value is not None and value in node.values
        return found != node.negated
    raise TypeError(f"no scalar evaluation for {type(node).__name__}")


_COMPARE: dict[str, Callable[[object, object], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def compiled(node: object) -> Callable[[Mapping[str, object]], object]:
    """The condition compiled (what `evaluate` runs after its first uses)."""
    return _compiled(_python(node, [0]))


def first_holding(
    groups: tuple[tuple[object, ...], ...],
) -> Callable[[Mapping[str, object]], tuple]:
    """One compiled function giving, for each group of conditions, the index of the
    first that holds for a panel's facts (None when none does): each condition means
    what `evaluate` says, and a group's are tried in order. The outcomes of every rule
    of a domain are thus chosen in one call."""
    counter = [0]
    chosen = [
        "("
        + "".join(f"{i} if {_python(node, counter)} else " for i, node in enumerate(group))
        + "None)"
        for group in groups
    ]
    return _compiled(f"({', '.join(chosen)},)")


def _compiled(expression: str) -> Callable[[Mapping[str, object]], object]:
    # The expression is generated from the whitelisted tree only (names as string
    # literals, constants by repr): nothing from a rules file is run as code.
    return eval(
        compile(f"lambda f: {expression}", "<rule condition>", "eval"), {"__builtins__": {}}
    )


def _python(node: object, counter: list[int]) -> str:
    """`node` as a Python expression over the facts `f`, with the meaning documented
    at the top of this module (a comparison with a none is false; `in` likewise)."""
    if isinstance(node, Name):
        return f"f[{node.name!r}]"
    if isinstance(node, Constant):
        return repr(node.value)
    if isinstance(node, (All, Any)):
        joined = (" and " if isinstance(node, All) else " or ").join(
            _python(n, counter) for n in node.operands
        )
        return f"(not not ({joined}))"
    if isinstance(node, Not):
        return f"(not {_python(node.operand, counter)})"
    if isinstance(node, Compare):
        checks, sides = [], []
        for side in (node.left, node.right):
            if isinstance(side, Constant):
                if side.value is None:
                    return "False"
                sides.append(repr(side.value))
                continue
            counter[0] += 1
            name = f"_v{counter[0]}"
            checks.append(f"({name} := {_python(side, counter)}) is not None")
            sides.append(name)
        return f"({' and '.join([*checks, f'{sides[0]} {node.op} {sides[1]}'])})"
    if isinstance(node, Member):
        counter[0] += 1
        name = f"_v{counter[0]}"
        operand = _python(node.operand, counter)
        found = f"(({name} := {operand}) is not None and {name} in {node.values!r})"
        return f"(not {found})" if node.negated else f"(not not {found})"
    raise TypeError(f"no scalar evaluation for {type(node).__name__}")
