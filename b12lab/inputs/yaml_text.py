"""Safe YAML for panel files and ranges overlays: plain data, as written, bounded.

The document is built here from libyaml's event stream rather than by
PyYAML's composer: the C parser that produces events keeps its own stacks on
the heap, while the composer recurses once per nesting level and can exhaust
the C stack on a document nested thousands deep. Building from events lets
every limit be checked before anything is constructed:

- nesting deeper than `MAX_DEPTH` is refused as soon as it is seen, in every
  form (block mappings, compact `- - - x` sequences, `? ? ?` keys, flow);
- aliases (`*name`) are refused outright, so no alias bomb can expand;
- a document of more than `MAX_NODES` values is refused;
- tags other than `!!str` are refused, never constructed;
- a key given twice in one mapping is an error naming the key and its line.

Scalars keep what a person typed. In a panel file (`typed=False`) every value
is text except an empty value or `null`/`~` (None): `0012345`, `1:40`, `0x64`,
`1_000`, `2026-09-01` and `yes` stay text for the reading layer to read or
refuse. In a ranges file (`typed=True`) plain decimal numbers (`148`, `0.40`,
`1e3`; not `0012`, `1_000`, `0x64` or `1:40`) are numbers, `true`/`false` are
booleans, and everything else is text.
"""

from __future__ import annotations

import re
from typing import Any

from b12lab.errors import InputError

MAX_DEPTH = 64
MAX_NODES = 200_000
# A number with more digits than this is kept as a float, which is infinite
# when it is too large; integers of thousands of digits are never built.
MAX_INT_DIGITS = 18

_NULLS = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
_DECIMAL = re.compile(
    r"^[-+]?(?:0|[1-9][0-9]*)(?P<fraction>\.[0-9]*)?(?P<exponent>[eE][-+]?[0-9]+)?$"
)
_DECIMAL_NO_INT = re.compile(r"^[-+]?\.[0-9]+(?:[eE][-+]?[0-9]+)?$")
_STR_TAG = "tag:yaml.org,2002:str"


def _scalar(event: Any, typed: bool) -> Any:
    value: str = event.value
    if event.tag not in (None, "!", _STR_TAG):
        raise _TagRefused(event.tag)
    plain = not event.style and event.tag is None
    if plain and value in _NULLS:
        return None
    if not plain and not value.strip() and event.tag != _STR_TAG:
        return None
    if not typed or not plain:
        return value
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    match = _DECIMAL.match(value)
    if match and not match.group("fraction") and not match.group("exponent"):
        digits = value.lstrip("+-")
        return int(value) if len(digits) <= MAX_INT_DIGITS else float(value)
    if match or _DECIMAL_NO_INT.match(value):
        return float(value)
    return value


class _TagRefused(Exception):
    def __init__(self, tag: str):
        super().__init__(tag)
        self.tag = tag


class _Collection:
    """A mapping or sequence under construction."""

    __slots__ = ("key", "key_line", "lines", "value")

    def __init__(self, value: dict | list):
        self.value = value
        self.key: Any = _NO_KEY
        self.key_line = 0
        self.lines: dict[str, int] = {}


_NO_KEY = object()


def load_yaml(text: str, label: str, *, typed: bool) -> Any:
    """The document in `text` as plain dicts, lists and scalars (see the module text)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    stack: list[_Collection] = []
    root: Any = None
    documents = nodes = 0

    def add(value: Any, line: int, container: bool) -> None:
        nonlocal root
        if not stack:
            root = value
            return
        parent = stack[-1]
        if isinstance(parent.value, list):
            parent.value.append(value)
            return
        if parent.key is _NO_KEY:
            if container:
                raise InputError(
                    f"{label} uses a list or mapping as a key at line {line}",
                    fix="keys are plain names, e.g. 'b12: 180 pg/mL'",
                )
            key = "" if value is None else str(value)
            if key in parent.lines:
                raise InputError(
                    f"{label} gives the key '{key[:40]}' twice (lines {parent.lines[key]} "
                    f"and {line})",
                    fix="keep one of them",
                )
            parent.key, parent.key_line = key, line
            parent.lines[key] = line
            return
        parent.value[parent.key] = value
        parent.key = _NO_KEY

    try:
        for event in yaml.parse(text, Loader=loader):
            kind = type(event).__name__
            line = event.start_mark.line + 1 if event.start_mark else 0
            if kind == "AliasEvent":
                raise InputError(
                    f"{label} uses a YAML alias (*{str(event.anchor)[:40]}) at line {line}",
                    fix="write each value out in full; aliases are not read",
                )
            if kind in ("ScalarEvent", "MappingStartEvent", "SequenceStartEvent"):
                nodes += 1
                if nodes > MAX_NODES:
                    raise InputError(
                        f"{label} holds more than {MAX_NODES:,} values",
                        fix="a panel or ranges file is short; use 'b12lab batch' for exports",
                    )
            if kind == "ScalarEvent":
                add(_scalar(event, typed), line, container=False)
            elif kind in ("MappingStartEvent", "SequenceStartEvent"):
                tag = getattr(event, "tag", None)
                if tag is not None and tag != "!" and not tag.endswith((":map", ":seq")):
                    raise _TagRefused(tag)
                if len(stack) >= MAX_DEPTH:
                    raise InputError(
                        f"{label} is nested too deeply (more than {MAX_DEPTH} levels, line {line})",
                        fix="give plain 'key: value' YAML",
                    )
                collection = _Collection({} if kind == "MappingStartEvent" else [])
                add(collection.value, line, container=True)
                stack.append(collection)
            elif kind in ("MappingEndEvent", "SequenceEndEvent"):
                stack.pop()
            elif kind == "DocumentStartEvent":
                documents += 1
                if documents > 1:
                    raise InputError(
                        f"{label} holds more than one YAML document (line {line})",
                        fix="give one document (remove the second '---')",
                    )
    except _TagRefused as refused:
        raise InputError(
            f"{label} uses a YAML tag b12lab does not read ({refused.tag[:60]})",
            fix="write plain values; tags such as !!python/... are never executed",
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "syntax error"
        if "nesting depth" in problem:  # libyaml's own limit, met while scanning ahead
            raise InputError(
                f"{label} is nested too deeply (more than {MAX_DEPTH} levels{where})",
                fix="give plain 'key: value' YAML",
            ) from None
        raise InputError(
            f"{label} is not valid YAML{where}: {problem}"[:300],
            fix="fix the YAML syntax (values like '180 pg/mL' need no quotes)",
        ) from None
    return root
