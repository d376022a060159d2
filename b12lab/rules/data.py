"""Rules written as data (`b12lab/rules.yaml`): loading, checking, and evaluating one.

Each entry has the catalogue fields (id, domain, severity, title, trigger,
says, next_steps, sources) and how it decides:

- `unresolved:` a list of `{when, missing}`, tried first: when a condition
  holds, the rule cannot decide and `missing` names what would decide it (a
  list of analytes, or a set the fact layer computes, e.g. `undecided_b12`);
- `when:` with `detail:` and `evidence:`, or `variants:` (a list of them; the
  first whose `when` holds fires);
- `extras:` a list of `{when, detail, evidence, adds_next_steps, missing}` added
  to a fired finding whose `when` also holds (the detail is appended; `missing`
  names tests that would sharpen the finding);
- `adds_next_steps:` (in a rule, variant or extra) steps added to the rule's
  own for this panel, which may quote facts.

Conditions are parsed once (`b12lab.rules.condition`); `{fact}` in a text is
the fact as quoted. Every fact, threshold and analyte named is checked when
the file loads: an error names its dotted path and the closest names.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from b12lab.model import DOMAINS, SEVERITIES
from b12lab.ranges import THRESHOLD_KEYS
from b12lab.rules import facts as fact_layer
from b12lab.rules.base import B12_INPUTS, AskTests, Case, Fired, Missing, Rule, Step
from b12lab.rules.condition import (
    WALKED_USES,
    Compare,
    Member,
    Name,
    Parser,
    RuleFileError,
    comparisons,
    evaluate,
    first_holding,
    from_tree,
    names,
    to_tree,
    walk,
)

RULES_FILE = Path(__file__).resolve().parent.parent / "rules.yaml"
COMPILED_RULES = RULES_FILE.with_name("compiled_rules.json")
RULE_KEYS = (
    "id",
    "domain",
    "severity",
    "title",
    "trigger",
    "says",
    "next_steps",
    "sources",
    "unresolved",
    "when",
    "detail",
    "evidence",
    "variants",
    "extras",
    "adds_next_steps",
)
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")


class Template(NamedTuple):
    """A text with `{fact}` placeholders, checked at load. `pieces` is the text split
    at them: the literal parts, with each placeholder's fact name between two."""

    text: str
    names: tuple[str, ...]
    pieces: tuple[str, ...]

    def fill(self, facts: Mapping[str, object]) -> str:
        if len(self.pieces) == 1:
            return self.text
        filled = list(self.pieces)
        for index in range(1, len(filled), 2):
            filled[index] = fact_layer.shown(facts[filled[index]])
        return "".join(filled)


class Outcome(NamedTuple):
    """One way a rule fires (or, with `missing`, cannot decide)."""

    when: object
    detail: Template | None = None
    evidence: tuple[tuple[str, Template, object], ...] = ()  # (key, text, condition or None)
    next_steps: tuple[Template, ...] = ()
    missing: tuple[str, ...] = ()


class RuleLogic:
    """How a rule decides: its unresolved outcomes (tried first), its variants (the
    first that holds fires) and its extras (added to a fired finding)."""

    def __init__(
        self,
        unresolved: tuple[Outcome, ...],
        variants: tuple[Outcome, ...],
        extras: tuple[Outcome, ...],
    ):
        self.unresolved = unresolved
        self.variants = variants
        self.extras = extras

    def conditions(self) -> list[object]:
        return [o.when for o in (*self.unresolved, *self.variants, *self.extras)]

    @property
    def choices(self) -> tuple[object, ...]:
        """The conditions that choose the outcome, in the order tried: the unresolved
        ones first, then the variants'."""
        return tuple(o.when for o in (*self.unresolved, *self.variants))

    def decide(self, facts: Mapping[str, object]) -> tuple[str, int] | None:
        """Which outcome holds: ("unresolved", i) or ("fires", i), or None."""
        index = self.walked(facts)
        if index is None:
            return None
        if index < len(self.unresolved):
            return "unresolved", index
        return "fires", index - len(self.unresolved)

    def walked(self, facts: Mapping[str, object]) -> int | None:
        """The index of the first of `choices` that holds, walking each condition's tree."""
        for index, condition in enumerate(self.choices):
            if walk(condition, facts):
                return index
        return None

    def evaluate(self, case: Case) -> Fired | Missing | None:
        """The rule's outcome for one case (a domain's rules are decided together by
        `outcomes`)."""
        facts = fact_layer.facts_of(case)
        return self.outcome(self.walked(facts), facts, case)

    def outcome(
        self, index: int | None, facts: Mapping[str, object], case: Case, brief: bool = False
    ) -> Fired | Missing | None:
        """The finding (or what is missing) of the outcome `choices` chose.

        `brief`: without the texts (detail, evidence, next steps), only what the
        finding's id, severity and missing tests need."""
        if index is None:
            return None
        if index < len(self.unresolved):
            return Missing(_missing(self.unresolved[index], case))
        chosen = self.variants[index - len(self.unresolved)]
        if brief:
            missing = list(_missing(chosen, case))
            for extra in self.extras:
                if extra.missing and evaluate(extra.when, facts):
                    missing.extend(_missing(extra, case))
            return Fired("", {}, missing=tuple(missing))
        detail = chosen.detail.fill(facts)
        evidence = _evidence(chosen, facts)
        steps = [t.fill(facts) for t in chosen.next_steps]
        missing = list(_missing(chosen, case))
        for extra in self.extras:
            if evaluate(extra.when, facts):
                if extra.detail is not None:
                    detail += extra.detail.fill(facts)
                evidence.update(_evidence(extra, facts))
                steps.extend(t.fill(facts) for t in extra.next_steps)
                missing.extend(_missing(extra, case))
        return Fired(detail, evidence, next_steps=tuple(steps), missing=tuple(missing))


class _Chooser:
    """Chooses the outcome of each of a domain's rules: walking their conditions for
    the first uses, then in one compiled call (as `condition.evaluate` does)."""

    def __init__(self, logics: tuple[RuleLogic, ...]):
        self.logics = logics
        self.uses = 0
        self.compiled: Callable[[Mapping[str, object]], tuple] | None = None

    def __call__(self, facts: Mapping[str, object]) -> tuple:
        if self.compiled is None:
            self.uses += 1
            if self.uses <= WALKED_USES:
                return tuple(logic.walked(facts) for logic in self.logics)
            self.compiled = first_holding(tuple(logic.choices for logic in self.logics))
        return self.compiled(facts)


# The chooser of each tuple of rules decided together (kept with the tuple, so that an
# id is never taken for another tuple's).
_CHOOSERS: dict[int, tuple[tuple[Rule, ...], _Chooser]] = {}


def outcomes(
    rules: tuple[Rule, ...], case: Case, brief: bool = False
) -> list[Fired | Missing | None]:
    """Each rule's outcome for one case, in order: the rules written as data share the
    case's facts and are chosen together (`brief`: their findings without texts)."""
    if any(rule.logic is None for rule in rules):
        return [rule.evaluate(case) for rule in rules]
    entry = _CHOOSERS.get(id(rules))
    if entry is None or entry[0] is not rules:
        entry = _CHOOSERS[id(rules)] = (rules, _Chooser(tuple(r.logic for r in rules)))
    facts = fact_layer.facts_of(case)
    return [
        rule.logic.outcome(index, facts, case, brief)
        for rule, index in zip(rules, entry[1](facts), strict=True)
    ]


def _missing(outcome: Outcome, case: Case) -> tuple[str, ...]:
    """The analytes an outcome's `missing` names, a computed set (e.g. `undecided_b12`)
    replaced by its members."""
    missing: list[str] = []
    for name in outcome.missing:
        if name in fact_layer.MISSING_SETS:
            missing.extend(fact_layer.MISSING_SETS[name](case))
        else:
            missing.append(name)
    return tuple(missing)


def _evidence(outcome: Outcome, facts: Mapping[str, object]) -> dict[str, str]:
    return {
        key: text.fill(facts)
        for key, text, when in outcome.evidence
        if when is None or evaluate(when, facts)
    }


class _Loader:
    def __init__(
        self,
        source: str,
        sources: frozenset[str] | None,
        laboratory: bool = False,
        parsed: Mapping[str, list] | None = None,
    ):
        self.source = source
        self.kinds = fact_layer.kinds()
        self.parser = Parser(self.kinds)
        self.sources = sources
        self.laboratory = laboratory
        self.parsed = parsed or {}  # condition text -> its tree, from the compiled cache
        self.conditions: dict[str, list] = {}  # every condition read, for the cache

    def fail(self, path: str, problem: str, fix: str = "") -> RuleFileError:
        return RuleFileError(path, problem, fix=fix, source=self.source)

    def text(self, node: object, path: str) -> str:
        if not isinstance(node, str) or not node.strip():
            raise self.fail(path, "expected a text")
        return node

    def template(self, node: object, path: str) -> Template:
        text = self.text(node, path)
        found = tuple(_PLACEHOLDER.findall(text))
        for name in found:
            if name not in self.kinds:
                close = difflib.get_close_matches(name, list(self.kinds), n=3, cutoff=0.6)
                raise self.fail(
                    path,
                    f"unknown fact '{{{name}}}' in the text",
                    fix=f"did you mean {', '.join(close)}?"
                    if close
                    else "see docs/writing-rules.md",
                )
        return Template(text, found, tuple(_PLACEHOLDER.split(text)))

    def condition(self, node: object, path: str) -> object:
        tree = self.parsed.get(node) if isinstance(node, str) else None
        if tree is not None and names(parsed := from_tree(tree)) <= self.kinds.keys():
            return parsed  # checked when the cache was written; its names still exist
        parsed = self.parser.parse(node, path, self.source)
        self.conditions[node] = to_tree(parsed)
        if self.laboratory:
            for compare in comparisons(parsed):
                self.comparison(compare, path)
        return parsed

    def comparison(self, compare: Compare | Member, path: str) -> None:
        """A laboratory's rule compares a measured value (or the day of therapy) only
        with a threshold of the same analyte (or of days) from the ranges file, where
        every number keeps its source; and a grade with a number. A batch then decides
        each distinct key once, exactly as one panel at a time."""
        sides = (compare.operand,) if isinstance(compare, Member) else (compare.left, compare.right)
        for side in sides:
            if not isinstance(side, Name) or self.kinds.get(side.name) != "number":
                continue
            name = side.name
            if name.startswith("threshold.") or name.endswith(".grade"):
                continue
            scale = _scale(name)
            other = (
                None
                if isinstance(compare, Member)
                else (compare.right if side is compare.left else compare.left)
            )
            if (
                scale is not None
                and isinstance(other, Name)
                and other.name.startswith("threshold.")
                and THRESHOLD_KEYS.get(other.name.removeprefix("threshold.")) == scale
            ):
                continue
            same_scale = sorted(
                f"threshold.{key}" for key, of in THRESHOLD_KEYS.items() if of == scale
            )
            raise self.fail(
                path,
                f"{name} is compared with "
                f"{_shown(other) if other is not None else 'a list of numbers'}: a "
                "laboratory's rule compares a value only with a threshold of the same "
                "analyte, so that every number keeps its source in the ranges file",
                fix=f"compare with {', '.join(same_scale)} (set its value in a ranges "
                "overlay, --ranges)"
                if same_scale
                else "use the fact's flags (e.g. .low, .high) or its grade",
            )

    def keys(self, node: object, path: str, allowed: tuple[str, ...]) -> dict:
        if not isinstance(node, dict):
            raise self.fail(path, "expected a mapping")
        for key in node:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                raise self.fail(
                    f"{path}.{key}" if path else str(key),
                    "unknown key",
                    fix=f"did you mean {close[0]}?" if close else "use " + ", ".join(allowed),
                )
        return node

    def listing(self, node: object, path: str) -> list:
        if node is None:
            return []
        if not isinstance(node, list):
            raise self.fail(path, "expected a list")
        return node

    def analyte(self, name: object, path: str) -> str:
        if name in fact_layer.ANALYTES or name in fact_layer.MISSING_SETS:
            return name
        choices = [*fact_layer.ANALYTES, *fact_layer.MISSING_SETS]
        close = difflib.get_close_matches(str(name), choices, n=3)
        raise self.fail(
            path,
            f"unknown analyte '{name}'",
            fix=f"did you mean {', '.join(close)}?"
            if close
            else "use one of " + ", ".join(choices),
        )

    def step(self, node: object, path: str) -> str:
        if isinstance(node, str):
            return self.text(node, path)
        entry = self.keys(
            node, path, ("text", "asks", "given", "on_therapy", "ask", "tests", "also")
        )
        if "ask" in entry:
            tests = self.keys(entry.get("tests") or {}, f"{path}.tests", fact_layer.ANALYTES)
            return AskTests(
                self.text(entry["ask"], f"{path}.ask"),
                {k: self.text(v, f"{path}.tests.{k}") for k, v in tests.items()},
                also=tuple(self.listing(entry.get("also"), f"{path}.also")),
            )
        asks = tuple(
            self.analyte(a, f"{path}.asks[{i}]")
            for i, a in enumerate(self.listing(entry.get("asks"), f"{path}.asks"))
        )
        return Step(
            self.text(entry.get("text"), f"{path}.text"),
            asks=asks,
            given=entry.get("given"),
            on_therapy=entry.get("on_therapy"),
        )

    def outcome(self, node: object, path: str, *, fires: bool) -> Outcome:
        allowed = ("when", "detail", "evidence", "adds_next_steps", "missing")
        entry = self.keys(node, path, allowed if fires else ("when", "missing"))
        when = self.condition(entry.get("when"), f"{path}.when")
        missing = tuple(
            self.analyte(a, f"{path}.missing[{i}]")
            for i, a in enumerate(self.listing(entry.get("missing"), f"{path}.missing"))
        )
        if not fires:
            return Outcome(when, missing=missing)
        evidence = []
        given = entry.get("evidence") or {}
        if not isinstance(given, dict):
            raise self.fail(f"{path}.evidence", "expected a mapping of evidence keys to texts")
        for key, value in given.items():
            where = f"{path}.evidence.{key}"
            if isinstance(value, dict):
                value = self.keys(value, where, ("text", "when"))
                evidence.append(
                    (
                        key,
                        self.template(value.get("text"), f"{where}.text"),
                        self.condition(value.get("when"), f"{where}.when"),
                    )
                )
            else:
                evidence.append((key, self.template(value, where), None))
        detail = entry.get("detail")
        return Outcome(
            when,
            missing=missing,
            detail=None if detail is None else self.template(detail, f"{path}.detail"),
            evidence=tuple(evidence),
            next_steps=tuple(
                self.template(s, f"{path}.adds_next_steps[{i}]")
                for i, s in enumerate(
                    self.listing(entry.get("adds_next_steps"), f"{path}.adds_next_steps")
                )
            ),
        )

    def rule(self, node: object, path: str) -> Rule:
        entry = self.keys(node, path, RULE_KEYS)
        rule_id = self.text(entry.get("id"), f"{path}.id")
        domain = entry.get("domain")
        if domain not in DOMAINS:
            raise self.fail(
                f"{path}.domain", f"unknown domain '{domain}'", "use " + ", ".join(DOMAINS)
            )
        severity = entry.get("severity")
        if severity not in SEVERITIES:
            raise self.fail(
                f"{path}.severity", f"unknown severity '{severity}'", "use " + ", ".join(SEVERITIES)
            )
        sources = tuple(self.listing(entry.get("sources"), f"{path}.sources"))
        for index, source in enumerate(sources):
            if self.sources is not None and source not in self.sources:
                close = difflib.get_close_matches(str(source), sorted(self.sources), n=3)
                raise self.fail(
                    f"{path}.sources[{index}]",
                    f"source '{source}' is not listed under sources in the ranges file",
                    fix=f"did you mean {', '.join(close)}?"
                    if close
                    else "add it to the ranges file",
                )
        unresolved = tuple(
            self.outcome(o, f"{path}.unresolved[{i}]", fires=False)
            for i, o in enumerate(self.listing(entry.get("unresolved"), f"{path}.unresolved"))
        )
        if "variants" in entry:
            if "when" in entry:
                raise self.fail(f"{path}.when", "give either when or variants, not both")
            variants = tuple(
                self.outcome(o, f"{path}.variants[{i}]", fires=True)
                for i, o in enumerate(self.listing(entry["variants"], f"{path}.variants"))
            )
        else:
            single = {
                k: entry[k] for k in ("when", "detail", "evidence", "adds_next_steps") if k in entry
            }
            variants = (self.outcome(single, path, fires=True),)
        for index, variant in enumerate(variants):
            if variant.detail is None:
                where = f"{path}.variants[{index}]" if "variants" in entry else path
                raise self.fail(f"{where}.detail", "a rule that fires needs a detail")
        extras = tuple(
            self.outcome(o, f"{path}.extras[{i}]", fires=True)
            for i, o in enumerate(self.listing(entry.get("extras"), f"{path}.extras"))
        )
        logic = RuleLogic(unresolved, variants, extras)
        next_steps = tuple(
            self.step(s, f"{path}.next_steps[{i}]")
            for i, s in enumerate(self.listing(entry.get("next_steps"), f"{path}.next_steps"))
        )
        return Rule(
            rule_id,
            domain,
            severity,
            self.text(entry.get("title"), f"{path}.title"),
            self.text(entry.get("trigger"), f"{path}.trigger"),
            self.text(entry.get("says"), f"{path}.says"),
            next_steps,
            sources,
            _reads(logic, next_steps) | B12_INPUTS,
            logic.evaluate,
            logic,
        )


def _reads(logic: RuleLogic, next_steps: tuple[str, ...]) -> frozenset[str]:
    """The analytes a rule's facts, texts and next steps look at."""
    used: set[str] = set()
    for condition in logic.conditions():
        used |= names(condition)
    for outcome in (*logic.variants, *logic.extras):
        for text in (outcome.detail, *(e[1] for e in outcome.evidence), *outcome.next_steps):
            if text is not None:
                used.update(text.names)
        used |= set().union(*(names(e[2]) for e in outcome.evidence if e[2] is not None))
    analytes: set[str] = set()
    for name in used:
        analytes.update(fact_layer.reads(name))
        head = name.split(".")[0]
        if head in fact_layer.ANALYTES:
            analytes.add(head)
    for outcome in logic.unresolved:
        analytes.update(a for a in outcome.missing if a in fact_layer.ANALYTES)
    for step in next_steps:
        analytes.update(getattr(step, "asks", ()))
        analytes.update(a for a, _ in getattr(step, "tests", ()))
    return frozenset(analytes)


def _scale(name: str) -> str | None:
    """What a number fact measures, as THRESHOLD_KEYS names it: an analyte, or days."""
    if name in ("therapy_day", "platelets.earlier_high_gap"):
        return "days"
    head, _, tail = name.partition(".")
    return head if tail == "value" and head in fact_layer.ANALYTES else None


def _shown(node: object) -> str:
    return node.name if isinstance(node, Name) else repr(getattr(node, "value", node))


def parse_rules(
    document: object,
    source: str,
    sources: frozenset[str] | None,
    *,
    laboratory: bool = False,
    parsed: Mapping[str, list] | None = None,
) -> list[Rule]:
    """The rules of a loaded rules document, checked (a laboratory's: see _Loader.comparison).

    `parsed` maps condition texts to the trees the compiled cache keeps."""
    return _load(document, source, sources, laboratory, parsed)[0]


def _load(document, source, sources, laboratory=False, parsed=None) -> tuple[list[Rule], dict]:
    """The rules, and every condition's tree by its text."""
    loader = _Loader(source, sources, laboratory, parsed)
    document = loader.keys(document, "", ("rules",))
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, node in enumerate(loader.listing(document.get("rules"), "rules")):
        rule = loader.rule(node, f"rules[{index}]")
        if rule.id in seen:
            raise loader.fail(f"rules[{index}].id", f"rule id '{rule.id}' is given twice")
        seen.add(rule.id)
        rules.append(rule)
    return rules, loader.conditions


def read_rules_document(text: str, label: str) -> object:
    """A rules file's document (YAML; keys given twice are refused, numbers typed)."""
    from b12lab.inputs.yaml_text import load_yaml

    return load_yaml(text, label, typed=True)


def _fingerprint(text: str) -> str:
    """The file's length and CRC (as the compiled ranges use): cheap at start-up."""
    import zlib

    content = text.encode("utf-8")
    return f"{len(content)}-{zlib.crc32(content):08x}"


def compile_rules() -> dict:
    """The content of `compiled_rules.json`: the shipped rules file as parsed YAML."""
    text = RULES_FILE.read_text(encoding="utf-8")
    document = read_rules_document(text, "rules.yaml")
    _, conditions = _load(document, "rules.yaml", None)  # refuses to compile a bad file
    return {
        "source_fingerprint": _fingerprint(text),
        "document": document,
        "conditions": dict(sorted(conditions.items())),
    }


@lru_cache(maxsize=1)
def shipped_rules() -> tuple[Rule, ...]:
    """b12lab's own rules, from the file shipped in the package.

    The parsed YAML, and each condition's parsed tree, are cached in
    `compiled_rules.json` (a one-patient `interpret` then never loads a YAML parser
    nor parses a condition); a cache that no longer matches the YAML is ignored.
    """
    import json

    text = RULES_FILE.read_text(encoding="utf-8")
    document, conditions = None, None
    try:
        compiled = json.loads(COMPILED_RULES.read_text(encoding="utf-8"))
        if compiled.get("source_fingerprint") == _fingerprint(text):
            document, conditions = compiled["document"], compiled.get("conditions")
    except (OSError, ValueError):
        pass
    if document is None:
        document = read_rules_document(text, "rules.yaml")
    return tuple(parse_rules(document, "rules.yaml", None, parsed=conditions))


def main() -> None:
    """`python -m b12lab.rules --compile` rewrites compiled_rules.json."""
    import json
    import sys

    if sys.argv[1:] != ["--compile"]:
        sys.exit("usage: python -m b12lab.rules --compile")
    COMPILED_RULES.write_text(
        json.dumps(compile_rules(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"wrote {COMPILED_RULES}")


if __name__ == "__main__":
    main()
