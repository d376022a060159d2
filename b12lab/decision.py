"""What a panel's outcome depends on, and each distinct outcome decided once.

The engine (`b12lab.engine.evaluate`) is the only code that decides. This
module says what its answer for one panel (without earlier panels) depends
on, so that panels which agree on all of it are decided once:

- the limits in force (sex, and the age and trimester bands they fall in),
- each value's position among the cut points of those limits
  (`Limits.cut_points`: every number a rule may compare it with), and how it
  is censored,
- the days on therapy, placed among the day cut points,
- the context the clinician gave, and whether the panel is dated after the
  evaluation date,
- and, only where the report quotes them, the exact values: censored
  inputs, the inputs of a derived ANC or eGFR, the age when no interval
  applies to it, the dates of a therapy start after the panel, and a value
  that carries the laboratory's own flag or range (with them).

Rules compare values only with declared cut points. That is checked, not
trusted: a test runs every rule on values that record each comparison
(tests/test_decision.py), so a rule comparing with any other number fails it
before it can make two panels with one key decide differently.

The per-panel path (`RowInterpreter`) keys each panel with `key`; the
columnar path (`b12lab.batch.columnar`) computes the same positions for whole
columns with `positions`, from the same cut points of each limits group.
"""

from __future__ import annotations

import datetime as dt
import itertools
from bisect import bisect_left
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from b12lab.derived import ANC, EGFR, egfr_equation
from b12lab.engine import domain_rules, evaluate, run_domain
from b12lab.model import Finding, Panel, Report, evolve
from b12lab.outcomes import Outcome
from b12lab.ranges import Ranges
from b12lab.rules import facts as fact_layer
from b12lab.rules.base import B12_INPUTS, Case, therapy_days
from b12lab.rules.catalogue import Catalogue, catalogue_in_force, in_force
from b12lab.rules.condition import names
from b12lab.rules.facts import BY_FLAG

DAYS = "days"
MAX_DECISIONS = 50_000  # distinct decisions kept (a few MiB per thousand); beyond, start again
# Distinct domain outcomes kept (about 0.4 KiB each); beyond, start again.
MAX_DOMAIN_OUTCOMES = 20_000


def warnings(noted: tuple[str, ...], decided: tuple[str, ...]) -> tuple[str, ...]:
    """A report's warnings: what the reading layer noted, then the decision's own."""
    return tuple(dict.fromkeys((*noted, *decided)))


def position(value: float, cuts: tuple[float, ...]) -> int:
    """Where `value` lies among sorted cut points: 2*index, +1 when exactly on one.

    Two values with one position compare alike with every cut point.
    """
    index = bisect_left(cuts, value)
    return 2 * index + (index < len(cuts) and cuts[index] == value)


def positions(values, cuts):
    """`position` for a whole numpy array of values (NaN for none: position -1)."""
    import numpy as np

    cut_array = np.asarray(cuts, dtype=np.float64)
    index = np.searchsorted(cut_array, values, side="left")
    on = np.zeros(len(values), dtype=bool)
    inside = index < len(cut_array)
    on[inside] = cut_array[index[inside]] == values[inside]
    result = 2 * index.astype(np.int64) + on
    result[np.isnan(values)] = -1
    return result


@dataclass(frozen=True)
class Decision:
    """What a panel's batch CSV row shows beyond where it came from."""

    outcome: Outcome
    warnings: tuple[str, ...]
    guideline: str
    provenance: tuple[tuple[str, str], ...]
    derived: tuple[str, ...]  # analytes the engine derived (ANC, eGFR)

    @classmethod
    def of(cls, report: Report) -> Decision:
        return cls(
            outcome=Outcome.of(report),
            warnings=report.warnings,
            guideline=report.guideline,
            provenance=tuple(report.provenance.items()),
            derived=tuple(m.analyte for m in report.measurements if m.derived),
        )


class DecisionCore:
    """Keys panels by what decides them, and decides each key once."""

    def __init__(
        self,
        ranges: Ranges,
        guideline: str | None,
        today: dt.date,
        catalogue: Catalogue | None = None,
    ):
        self.ranges = ranges
        self.guideline = guideline
        self.today = today
        # A laboratory's rules (given, or in force when the run began; None: b12lab's
        # own) judge every panel of the run, whichever context asks later.
        self.catalogue = catalogue if catalogue is not None else in_force()
        self.decided: dict[Hashable, Decision] = {}
        self._distinct: dict[Decision, Decision] = {}  # keys that decide alike share one
        self._shared: dict[tuple, tuple] = {}  # one provenance object for every decision
        self._equation = egfr_equation(ranges)
        # Each domain's findings and wanted tests, by what its rules see (`domain_key`).
        self._domains: dict[Hashable, tuple[tuple[Finding, ...], tuple[str, ...]]] = {}
        self._cases: dict[tuple, int] = {}  # what all domains see beyond their analytes
        self._interned: dict[Hashable, object] = {}
        self._numbers = itertools.count()
        self._rule_sets: dict[int, tuple] = {}  # each domain's rules (kept), reads, order

    def key(self, panel: Panel) -> tuple:
        """Equal keys, equal decisions (for a panel judged without earlier panels)."""
        ranges = self.ranges
        trimester = panel.context.pregnancy_trimester
        limits = ranges.limits(panel.sex, panel.age, self.guideline, trimester)
        measurements = panel.measurements
        parts: list[Hashable] = [limits.key, panel.sex]
        for analyte in ranges.analytes:
            measurement = measurements.get(analyte)
            if measurement is None:
                parts.append(None)
                continue
            if measurement.censored or measurement.derived:
                # The report quotes censored inputs; derived values are exact.
                parts.append((measurement.censored, measurement.value, measurement.input))
            else:
                parts.append(position(measurement.value, limits.cut_points(analyte)))
            if measurement.lab_flag or measurement.lab_reference:
                # A disagreement with the laboratory's flag quotes the value as given.
                parts.append((measurement.lab_flag, measurement.lab_reference, measurement.input))
        # A derived value quotes its inputs exactly (and eGFR the age).
        if ANC.applies(measurements):
            parts.append(("anc from", *(_exact(measurements[a]) for a in ANC.inputs)))
        if self._equation is not None and EGFR.applies(measurements):
            parts.append(("egfr from", *(_exact(measurements[a]) for a in EGFR.inputs), panel.age))
        if not limits.unbanded.isdisjoint(measurements):
            parts.append(("age", panel.age))
        days = therapy_days(panel, self.today)
        if days is None:
            parts.append(None)
        else:
            parts.append(position(days, limits.cut_points(DAYS)))
            if days < 0:
                parts.append((panel.date, panel.context.b12_therapy_start))
        parts.append(panel.date is not None and panel.date > self.today)  # a warning says so
        parts.append(evolve(panel.context, b12_therapy_start=None, days_on_therapy=None))
        return tuple(parts)

    def decide(self, panel: Panel) -> Decision:
        """The panel's decision: the engine's, once per key.

        What the reading layer noted (`panel.warnings`) and refused
        (`panel.errors`) only comes before the decision's own warnings and is
        not part of it: `warnings` joins them.
        """
        key = self.key(panel)
        decision = self.decided.get(key)
        if decision is None:
            if len(self.decided) >= MAX_DECISIONS:
                self.decided.clear()  # memory stays bounded; keys are decided again
                self._distinct.clear()
            decision = self.decide_once(panel)
            decision = self._distinct.setdefault(decision, decision)
            self.decided[key] = decision
        return decision

    def decide_once(self, panel: Panel) -> Decision:
        """The panel's decision, not remembered (for a caller that keys panels itself).

        It is the full report's (`Decision.of(self.report(panel))`), from the engine's
        brief report (no texts a decision never shows), with each domain's outcome
        remembered by what that domain's rules see (`run_domain`).
        """
        panel = evolve(panel, warnings=(), errors=())
        with catalogue_in_force(self.catalogue):
            report = evaluate(
                panel,
                self.ranges,
                guideline=self.guideline,
                today=self.today,
                brief=True,
                run=self.run_domain,
            )
        decision = Decision.of(report)
        shared = self._shared.setdefault(decision.provenance, decision.provenance)
        return decision if shared is decision.provenance else evolve(decision, provenance=shared)

    def report(self, panel: Panel) -> Report:
        """The full report of one panel (every detail, not cached)."""
        with catalogue_in_force(self.catalogue):
            return evaluate(panel, self.ranges, guideline=self.guideline, today=self.today)

    def run_domain(
        self, domain: str, case: Case, brief: bool
    ) -> tuple[Sequence[Finding], Sequence[str]]:
        """`engine.run_domain`, its brief outcome remembered by `domain_key`."""
        rules, reads = domain_rules(domain)
        key = self.domain_key(case, rules, reads) if brief else None
        if key is None:
            return run_domain(domain, case, brief)
        known = self._domains.get(key)
        if known is None:
            if len(self._domains) >= MAX_DOMAIN_OUTCOMES:
                self._domains.clear()
                self._cases.clear()
                self._interned.clear()
            findings, wanted = run_domain(domain, case, brief)
            named = tuple(("finding", f.id, f.domain, f.severity, f.title) for f in findings)
            kept = tuple(self._kept(f, name) for f, name in zip(findings, named, strict=True))
            known = (self._kept(kept, named), self._kept(tuple(wanted), ("wanted", *wanted)))
            key = (*key[:2], *(self._kept(part) for part in key[2:]))
            self._domains[key] = self._kept(known, ("outcome", id(known[0]), id(known[1])))
        return known

    def _kept(self, value, key: Hashable = None):
        """One object for equal values (by `key`, or by themselves): the remembered
        outcomes and their keys share their findings, wanted tests and parts."""
        return self._interned.setdefault(value if key is None else key, value)

    def domain_key(self, case: Case, rules: tuple, reads: frozenset[str]) -> Hashable | None:
        """Equal keys, equal brief outcomes of the domain whose `rules` read `reads`.

        The rules see the case restricted to `reads` (`Case.restricted`), through the
        fact layer: each value's flag and position among its limits' cut points (and
        how it is censored), or its flag alone where the conditions read it only
        through flags (`_granularity`), the B12 assessments, the limits in force, the
        day of therapy among the day cut points, and the context. None (not
        remembered): a rule written in Python (it may read anything), earlier panels,
        or a value carried from an earlier panel.
        """
        known = self._rule_sets.get(id(rules))
        if known is None or known[0] is not rules or known[1] is not reads:
            known = self._rule_sets[id(rules)] = (rules, reads, *_granularity(rules, reads))
        if known[2] is None:
            return None
        seen = case.__dict__.get("_seen", False)  # kept beside the frozen case's fields
        if seen is False:
            seen = case.__dict__["_seen"] = self._seen(case)
        if seen is None:
            return None
        number, visible = seen
        flags = case.flags
        return (
            id(rules),
            number,
            tuple(map(visible.get, known[2])),
            tuple(map(flags.get, known[3])),
        )

    def _seen(self, case: Case) -> tuple[int, dict[str, tuple]] | None:
        """What every domain's rules see beyond their analytes (as a number), and each
        value as they see it; None when a domain's outcome is not remembered."""
        panel, limits, flags = case.panel, case.limits, case.flags
        if case.history:
            return None
        visible = {}
        for analyte, measurement in panel.measurements.items():
            if measurement.carried_from is not None:
                return None
            where = position(measurement.value, limits.cut_points(analyte))
            visible[analyte] = self._kept((where, measurement.censored, flags.get(analyte)))
        days = therapy_days(panel, case.today)
        shared = (
            limits.key,
            case.b12,
            case.serum,
            None if days is None else position(days, limits.cut_points(DAYS)),
            evolve(panel.context, b12_therapy_start=None, days_on_therapy=None),
        )
        number = self._cases.get(shared)
        if number is None:  # a number never given before, even after a clear
            number = self._cases[shared] = next(self._numbers)
        return number, visible


def _granularity(rules: tuple, reads: frozenset[str]) -> tuple[tuple | None, tuple]:
    """The analytes a domain's rules see by position among their cut points, and those
    they see by flag alone (their conditions read them only through `BY_FLAG` facts);
    (None, ()) when a rule is written in Python (it may read anything)."""
    if any(rule.logic is None for rule in rules):
        return None, ()
    named = set().union(*(names(c) for rule in rules for c in rule.logic.conditions()))
    by_position = set(B12_INPUTS)  # the B12 assessment and the missing sets read them
    for name in named - BY_FLAG:
        by_position.update(fact_layer.reads(name))
        head = name.partition(".")[0]
        if head in fact_layer.ANALYTES:
            by_position.add(head)
    return tuple(sorted(reads & by_position)), tuple(sorted(reads - by_position))


def _exact(measurement) -> tuple:
    return (measurement.value, measurement.decimals, measurement.censored, measurement.input)


__all__ = ["DAYS", "Decision", "DecisionCore", "position", "positions"]
