"""The catalogue in force: b12lab's rules, or b12lab's with a laboratory's rules file.

A laboratory's rules file (`--rules FILE`, or `rules=` in the Python API) has

- `prefix:` the laboratory's own prefix for new rule ids (e.g. `stmarys-`); it
  may not be the first part of any b12lab rule id, so the ids never collide;
- `rules:` new rules, in the form of `b12lab/rules.yaml`, each id starting with
  the prefix;
- `changes:` b12lab rules by id, with new texts (`title`, `trigger`, `says`,
  `next_steps`); thresholds are changed in a ranges overlay (`--ranges`);
- `cases:` cornerstone cases: a panel (`values`, optional `context` and
  `as_of`) with the findings it must give (`gives`) and must not (`not`).

`b12lab rules check FILE` replays every cornerstone case, b12lab's own
(`b12lab/cornerstone_cases.yaml`, from its test panels) and the file's
(`b12lab.api.replay_cases`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import re
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

from b12lab.errors import option
from b12lab.model import DOMAINS
from b12lab.rules.base import B12_INPUTS, Rule
from b12lab.rules.condition import RuleFileError

CORNERSTONE_CASES = Path(__file__).resolve().parent.parent / "cornerstone_cases.yaml"
PREFIX = re.compile(r"^[a-z][a-z0-9]*-$")
TEXT_CHANGES = ("title", "trigger", "says", "next_steps")
CASE_KEYS = ("name", "earlier", "values", "context", "as_of", "gives", "not")
CONTEXT_KEYS = (
    "sex",
    "age",
    "date",
    "b12_therapy_start",
    "days_on_therapy",
    "alcohol_use",
    "neuro_symptoms",
    "hypersegmented_neutrophils",
    "pregnancy_trimester",
    "guideline",
)


class Cornerstone(NamedTuple):
    name: str
    values: dict
    context: dict
    as_of: str | None
    gives: tuple[str, ...]
    never: tuple[str, ...]
    source: str = ""
    path: str = ""
    earlier: tuple[tuple[str, dict], ...] = ()  # the patient's earlier panels: (date, values)


@dataclass(frozen=True)
class Catalogue:
    rules: dict[str, Rule]
    cases: tuple[Cornerstone, ...] = ()
    origin: str = ""  # a laboratory's rules file, as given ("" for b12lab's own)
    sha256: str = ""  # of that file's text: reports name the rules they were judged by

    @cached_property
    def by_domain(self) -> dict[str, tuple[Rule, ...]]:
        return {d: tuple(r for r in self.rules.values() if r.domain == d) for d in DOMAINS}

    @cached_property
    def reads(self) -> dict[str, frozenset[str]]:
        return {
            d: frozenset(B12_INPUTS).union(*(r.reads for r in rules))
            for d, rules in self.by_domain.items()
        }


_IN_FORCE: ContextVar[Catalogue | None] = ContextVar("b12lab_catalogue", default=None)


def in_force() -> Catalogue | None:
    """The laboratory's catalogue when one is in force (None: b12lab's own)."""
    return _IN_FORCE.get()


@contextlib.contextmanager
def catalogue_in_force(catalogue: Catalogue | None) -> Iterator[None]:
    token = _IN_FORCE.set(catalogue)
    try:
        yield
    finally:
        _IN_FORCE.reset(token)


def _fail(source: str, path: str, problem: str, fix: str = "") -> RuleFileError:
    return RuleFileError(path, problem, fix=fix, source=source)


def _check_known(
    source: str, path: str, name: object, known, problem: str, otherwise: str, suggestions: int = 1
) -> None:
    """Refuse a name that is not among `known`, suggesting the closest ones."""
    if name in known:
        return
    close = difflib.get_close_matches(str(name), list(known), n=suggestions)
    raise _fail(source, path, problem, f"did you mean {', '.join(close)}?" if close else otherwise)


def _cases(node: object, source: str, known: dict[str, Rule]) -> tuple[Cornerstone, ...]:
    cases = []
    entries = _entries(node, source, "cases", CASE_KEYS, "expected a list of cases", "a mapping")
    for index, (path, entry) in enumerate(entries):
        if not isinstance(entry.get("values"), dict) or not entry["values"]:
            raise _fail(source, f"{path}.values", "expected the panel's values, e.g. b12: 180")
        lists = {}
        for key in ("gives", "not"):
            ids = entry.get(key) or []
            if not isinstance(ids, list):
                raise _fail(source, f"{path}.{key}", "expected a list of finding ids")
            for position, rule_id in enumerate(ids):
                _check_known(
                    source,
                    f"{path}.{key}[{position}]",
                    rule_id,
                    known,
                    f"no rule '{rule_id}'",
                    "see b12lab rules",
                    suggestions=3,
                )
            lists[key] = tuple(ids)
        context = entry.get("context") or {}
        if not isinstance(context, dict):
            raise _fail(source, f"{path}.context", "expected a mapping, e.g. sex: female")
        for key in context:
            _check_known(
                source,
                f"{path}.context.{key}",
                key,
                CONTEXT_KEYS,
                "unknown context",
                "use " + ", ".join(CONTEXT_KEYS),
            )
        cases.append(
            Cornerstone(
                str(entry.get("name") or f"case {index + 1}"),
                {str(k): str(v) for k, v in entry["values"].items()},
                dict(context),
                None if entry.get("as_of") is None else str(entry["as_of"]),
                lists["gives"],
                lists["not"],
                source,
                path,
                _earlier(entry.get("earlier"), source, f"{path}.earlier"),
            )
        )
    return tuple(cases)


def default_catalogue() -> Catalogue:
    from b12lab.rules import RULES

    return Catalogue(dict(RULES))


def _earlier(node: object, source: str, path: str) -> tuple[tuple[str, dict], ...]:
    """A case's earlier panels: a list of {date, values}, oldest first."""
    panels = []
    expected = "expected a list of earlier panels, each with date and values"
    entries = _entries(node, source, path, ("date", "values"), expected, "date and values")
    for where, panel in entries:
        if panel.get("date") is None:
            raise _fail(source, f"{where}.date", "an earlier panel needs its date")
        if not isinstance(panel.get("values"), dict) or not panel["values"]:
            raise _fail(source, f"{where}.values", "expected the panel's values, e.g. b12: 180")
        panels.append((str(panel["date"]), {str(k): str(v) for k, v in panel["values"].items()}))
    return tuple(panels)


def _entries(
    node: object, source: str, path: str, keys: tuple[str, ...], expected: str, entry: str
):
    """(dotted path, mapping) of each entry of a list of mappings whose keys are `keys`
    (None: no entries); a bad one is refused with its path (`expected`: the list, `entry`:
    each entry)."""
    if node is None:
        return
    if not isinstance(node, list):
        raise _fail(source, path, expected)
    for index, item in enumerate(node):
        where = f"{path}[{index}]"
        if not isinstance(item, dict):
            raise _fail(source, where, f"expected {entry}")
        for key in item:
            _check_known(
                source, f"{where}.{key}", key, keys, "unknown key", "use " + ", ".join(keys)
            )
        yield where, item


def shipped_cases() -> tuple[Cornerstone, ...]:
    from b12lab.rules.data import read_rules_document

    document = read_rules_document(CORNERSTONE_CASES.read_text(encoding="utf-8"), "cases")
    return _cases(document.get("cases"), CORNERSTONE_CASES.name, default_catalogue().rules)


def load_lab_rules(path: str | Path, sources: frozenset[str] | None = None) -> Catalogue:
    """b12lab's catalogue with a laboratory's rules file overlaid (checked; RuleFileError)."""
    from b12lab.errors import InputError
    from b12lab.rules.data import parse_rules, read_rules_document

    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(
            f"cannot read the rules file {source} ({error.__class__.__name__})",
            fix=f"give a readable UTF-8 YAML file to {option('--rules')}",
        ) from None
    document = read_rules_document(text, source)
    if not isinstance(document, dict):
        raise _fail(source, "(top)", "expected a mapping with prefix, rules, changes and cases")
    allowed = ("prefix", "rules", "changes", "cases")
    for key in document:
        _check_known(source, str(key), key, allowed, "unknown key", "use " + ", ".join(allowed))
    base = default_catalogue().rules
    rules = dict(base)
    new = parse_rules({"rules": document.get("rules") or []}, source, sources, laboratory=True)
    if new:
        prefix = document.get("prefix")
        taken = sorted({rule_id.split("-")[0] + "-" for rule_id in base})
        if not isinstance(prefix, str) or not PREFIX.match(prefix):
            raise _fail(
                source, "prefix", "new rules need the laboratory's prefix, e.g. prefix: stmarys-"
            )
        if prefix in taken:
            raise _fail(
                source,
                "prefix",
                f"'{prefix}' is a prefix of b12lab's own rule ids",
                "choose another, e.g. your laboratory's short name",
            )
        for index, rule in enumerate(new):
            if not rule.id.startswith(prefix):
                raise _fail(
                    source,
                    f"rules[{index}].id",
                    f"'{rule.id}' does not start with the prefix '{prefix}'",
                    f"name it {prefix}{rule.id}",
                )
            rules[rule.id] = rule
    changes = document.get("changes") or {}
    if not isinstance(changes, dict):
        raise _fail(source, "changes", "expected rule ids with their new texts")
    for rule_id, change in changes.items():
        path = f"changes.{rule_id}"
        _check_known(
            source, path, rule_id, base, f"no b12lab rule '{rule_id}'", "see b12lab rules", 3
        )
        if not isinstance(change, dict) or not change:
            raise _fail(source, path, "expected new texts, e.g. title: ...")
        edits = {}
        for key, value in change.items():
            if key not in TEXT_CHANGES:
                raise _fail(
                    source,
                    f"{path}.{key}",
                    "only texts can change here",
                    f"change thresholds with {option('--ranges', 'FILE')}; change "
                    + ", ".join(TEXT_CHANGES),
                )
            if key == "next_steps":
                if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                    raise _fail(source, f"{path}.{key}", "expected a list of texts")
                edits[key] = tuple(value)
            elif not isinstance(value, str) or not value.strip():
                raise _fail(source, f"{path}.{key}", "expected a text")
            else:
                edits[key] = value
        rules[rule_id] = dataclasses.replace(rules[rule_id], **edits)
    cases = _cases(document.get("cases"), source, rules)
    import hashlib

    return Catalogue(rules, cases, source, hashlib.sha256(text.encode("utf-8")).hexdigest())


def in_force_for_command(catalogue: Catalogue, context) -> None:
    """Put `catalogue` in force until the running command (its click context) ends."""
    token = _IN_FORCE.set(catalogue)
    context.call_on_close(lambda: _IN_FORCE.reset(token))
