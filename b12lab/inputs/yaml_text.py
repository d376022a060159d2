"""Safe YAML for panel files and ranges overlays: plain data only, bounded nesting.

The safe loader never constructs Python objects from tags. libyaml recurses
once per nesting level, so a document nested thousands deep could overflow
the C stack; such a document is refused before it is parsed.
"""

from __future__ import annotations

from typing import Any

from b12lab.errors import InputError

MAX_DEPTH = 64
MAX_INDENT = 512


def too_deep(text: str) -> bool:
    """Flow brackets or block indentation deeper than any panel or ranges file needs."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    if deepest > MAX_DEPTH:
        return True
    return any(len(line) - len(line.lstrip(" ")) > MAX_INDENT for line in text.splitlines())


def load_yaml(text: str, label: str) -> Any:
    import yaml

    if too_deep(text):
        raise InputError(
            f"{label} is nested too deeply to be a panel or ranges file",
            fix="give plain 'key: value' YAML",
        )
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)
    except yaml.constructor.ConstructorError as error:
        raise InputError(
            f"{label} uses a YAML tag b12lab does not read ({error.problem})"[:300],
            fix="write plain values; tags such as !!python/... are never executed",
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "syntax error"
        raise InputError(
            f"{label} is not valid YAML{where}: {problem}",
            fix="fix the YAML syntax (values like '180 pg/mL' need no quotes)",
        ) from None
    except RecursionError:
        raise InputError(
            f"{label} is nested too deeply", fix="give plain 'key: value' YAML"
        ) from None
