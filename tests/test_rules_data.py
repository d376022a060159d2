"""Rules as data: the condition language, the checks at load, and the two evaluators
(one panel, whole columns) agreeing on every rule."""

from __future__ import annotations

import datetime as dt
import itertools
import subprocess
import sys

import numpy as np
import pytest
from conftest import TODAY, report_for
from hypothesis import given, settings
from hypothesis import strategies as st

from b12lab.ranges import load_ranges
from b12lab.rules import RULES
from b12lab.rules import arrays as array_evaluator
from b12lab.rules.condition import (
    Constant,
    Name,
    Parser,
    RuleFileError,
    compiled,
    constants,
    evaluate,
    first_holding,
    walk,
)
from b12lab.rules.data import RuleLogic, parse_rules, shipped_rules
from b12lab.rules.facts import FACTS, kinds

KINDS = kinds()
PARSER = Parser(KINDS)
DATA_RULES = [r for r in RULES.values() if r.logic is not None]
THRESHOLDS = load_ranges().thresholds


def parse(text: str):
    return PARSER.parse(text, "rules[0].when")


# -- the language ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "facts", "expected"),
    [
        ("platelets.low and b12.low", {"platelets.low": True, "b12.low": True}, True),
        ("platelets.low and not b12.low", {"platelets.low": True, "b12.low": True}, False),
        ("platelets.low or b12.low", {"platelets.low": False, "b12.low": True}, True),
        ("therapy_day >= 7", {"therapy_day": 7}, True),
        ("7 <= therapy_day <= 42", {"therapy_day": 43}, False),
        ("therapy_day >= 7", {"therapy_day": None}, False),
        ("therapy_day != 7", {"therapy_day": None}, False),  # no value: every comparison false
        ("not therapy_day >= 7", {"therapy_day": None}, True),
        ("platelets.grade in (3, 4)", {"platelets.grade": 4}, True),
        ("platelets.grade not in (3, 4)", {"platelets.grade": 2}, True),
        ("b12.status == 'borderline'", {"b12.status": "borderline"}, True),
        ("platelets.grade >= -1", {"platelets.grade": 0}, True),
    ],
)
def test_conditions_read_as_a_clinician_would_expect(text, facts, expected):
    assert evaluate(parse(text), facts) is expected


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("platelets.lw", "did you mean platelets.low"),
        ("b12.undetermined", "did you mean b12.undecided"),
        ("threshold.rebound_window_first", "threshold.rebound_window_first_day"),
        ("__import__('os').system('true')", "is not allowed"),
        ("platelets.value * 2 > 100", "is not allowed"),
        ("platelets.shown", "is not true or false"),
        ("therapy_day", "is not true or false"),
        ("platelets.value > 'high'", "compares a number with a text"),
        ("platelets.grade in platelets.value", "'in' needs a list of constants"),
        ("platelets.low and", "cannot parse"),
    ],
)
def test_a_bad_condition_is_refused_with_its_path_and_the_fix(text, said):
    with pytest.raises(RuleFileError) as caught:
        parse(text)
    message = str(caught.value) + " " + (caught.value.fix or "")
    assert message.startswith("rules[0].when: ")
    assert said in message


def _rule(**changes) -> dict:
    entry = {
        "id": "lab-plt-low",
        "domain": "platelets",
        "severity": "advisory",
        "title": "Low platelets",
        "trigger": "platelets below the lower limit",
        "says": "A low count.",
        "when": "platelets.low",
        "detail": "Platelets {platelets.shown} are low.",
        "evidence": {"platelets": "{platelets.shown}"},
    }
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not None}


@pytest.mark.parametrize(
    ("changes", "path", "said"),
    [
        ({"when": "platelet.low"}, "rules[0].when", "did you mean platelets.low"),
        ({"detail": "Platelets {platelets.shwn}."}, "rules[0].detail", "platelets.shown"),
        ({"evidence": {"x": "{b12.statu}"}}, "rules[0].evidence.x", "b12.status"),
        ({"domain": "platelet"}, "rules[0].domain", "unknown domain"),
        ({"severity": "severe"}, "rules[0].severity", "unknown severity"),
        ({"wen": "platelets.low"}, "rules[0].wen", "did you mean when"),
        (
            {"unresolved": [{"when": "platelets.low", "missing": ["ferritn"]}]},
            "rules[0].unresolved[0].missing[0]",
            "did you mean ferritin",
        ),
        (
            {"next_steps": [{"text": "Measure folate.", "asks": ["folat"]}]},
            "rules[0].next_steps[0].asks[0]",
            "did you mean folate",
        ),
        ({"sources": ["who-2020-feritin"]}, "rules[0].sources[0]", "who-2020-ferritin"),
        ({"detail": None}, "rules[0].detail", "needs a detail"),
    ],
)
def test_a_bad_rule_is_refused_at_load_with_its_dotted_path(changes, path, said):
    sources = frozenset(load_ranges().sources)
    with pytest.raises(RuleFileError) as caught:
        parse_rules({"rules": [_rule(**changes)]}, "lab.yaml", sources)
    message = str(caught.value) + " " + (caught.value.fix or "")
    assert message.startswith(f"lab.yaml: {path}: ")
    assert said in message


def test_a_rule_id_given_twice_is_refused():
    with pytest.raises(RuleFileError, match=r"rules\[1\]\.id: rule id 'lab-plt-low'"):
        parse_rules({"rules": [_rule(), _rule()]}, "lab.yaml", None)


def test_the_shipped_rules_name_only_known_facts_and_load_from_the_compiled_cache():
    from b12lab.rules.data import compile_rules

    assert shipped_rules()
    # The committed cache matches rules.yaml (else start-up parses YAML every time).
    import json

    from b12lab.rules.data import COMPILED_RULES

    assert json.loads(COMPILED_RULES.read_text(encoding="utf-8")) == compile_rules()


def test_every_fact_has_a_kind_and_a_meaning():
    for fact in FACTS.values():
        assert fact.kind in ("bool", "number", "text"), fact.name
        assert fact.meaning, fact.name


# -- two evaluators, one definition ----------------------------------------------------------


def _conditions(logic: RuleLogic) -> list:
    found = list(logic.conditions())
    for outcome in (*logic.variants, *logic.extras):
        found.extend(when for _, _, when in outcome.evidence if when is not None)
    return found


def _threshold(name: str) -> float:
    return THRESHOLDS[name.removeprefix("threshold.")].value


def _candidates(name: str, compared: set) -> list:
    """Every value of a fact that the conditions tell apart (and none)."""
    if name.startswith("threshold."):
        return [_threshold(name)]
    kind = KINDS[name]
    if kind == "bool":
        return [False, True]
    cuts = set()
    for other in compared:
        if isinstance(other, Constant):
            cuts.add(other.value)
        elif isinstance(other, Name) and other.name.startswith("threshold."):
            cuts.add(_threshold(other.name))
    if kind == "text":
        return [None, "other", *sorted(cuts)]
    values = {c + d for c in cuts for d in (-1, 0, 1)} | {0}
    return [None, *sorted(values)]


def _columns(names: list[str], rows: list[dict]) -> dict[str, np.ndarray]:
    columns = {}
    for name in names:
        values = [row[name] for row in rows]
        kind = "number" if name.startswith("threshold.") else KINDS[name]
        if kind == "bool":
            columns[name] = np.array(values, dtype=bool)
        elif kind == "number":
            columns[name] = np.array([np.nan if v is None else v for v in values], dtype=float)
        else:
            columns[name] = np.array(values, dtype=object)
    return columns


def _agree(logic: RuleLogic, rows: list[dict]) -> None:
    names = sorted(set(rows[0]))
    columns = _columns(names, rows)
    for condition in _conditions(logic):
        by_rows = [bool(evaluate(condition, row)) for row in rows]
        assert list(array_evaluator.evaluate(condition, columns, len(rows))) == by_rows
        # The scalar evaluator walks a condition's tree for its first uses, then runs it
        # compiled: both ways give the same on every row.
        run = compiled(condition)
        assert [walk(condition, row) for row in rows] == [run(row) for row in rows]
    chooser = first_holding((logic.choices,))
    assert [chooser(row)[0] for row in rows] == [logic.walked(row) for row in rows]
    expected = []
    for row in rows:
        decided = logic.decide(row)
        if decided is None:
            expected.append(-1)
        else:
            kind, index = decided
            expected.append(index if kind == "unresolved" else len(logic.unresolved) + index)
    assert list(array_evaluator.outcomes(logic, columns, len(rows))) == expected


@pytest.mark.parametrize("rule", DATA_RULES, ids=[r.id for r in DATA_RULES])
def test_both_evaluators_agree_on_every_combination_the_conditions_distinguish(rule):
    logic = rule.logic
    compared: dict[str, set] = {}
    for condition in _conditions(logic):
        for name, values in constants(condition).items():
            compared.setdefault(name, set()).update(values)
        from b12lab.rules.condition import names

        for name in names(condition):
            compared.setdefault(name, set())
    names_used = sorted(compared)
    grid = [_candidates(name, compared[name]) for name in names_used]
    rows = [dict(zip(names_used, values, strict=True)) for values in itertools.product(*grid)]
    assert rows
    _agree(logic, rows)


def _facts_seen(monkeypatch, panels, interpret_all=None) -> dict[str, list[dict]]:
    """The facts each data rule reads, for every case the rules saw while real panels were
    interpreted (by `interpret_all`, or one by one)."""
    from b12lab.rules import facts as fact_layer
    from b12lab.rules.condition import names

    cases = []
    facts_of = fact_layer.Facts

    class Recording(facts_of):
        def __init__(self, case):
            super().__init__(case)
            if not cases or cases[-1] is not case:
                cases.append(case)  # each rule of a domain gets the same case

    monkeypatch.setattr(fact_layer, "Facts", Recording)
    if interpret_all is not None:
        interpret_all(panels)
    for values, context in panels if interpret_all is None else ():
        report_for(values, **context)
    seen: dict[str, list[dict]] = {}
    for rule in DATA_RULES:
        wanted = sorted(set().union(*(names(c) for c in _conditions(rule.logic))))
        for case in cases:
            facts = facts_of(case)
            seen.setdefault(rule.id, []).append({name: facts[name] for name in wanted})
    return seen


UNITS = {
    "b12": "pmol/L",
    "platelets": "x10^9/L",
    "ferritin": "ug/L",
    "crp": "mg/L",
    "folate": "nmol/L",
    "mma": "umol/L",
    "tsat": "%",
    "holotc": "pmol/L",
    "homocysteine": "umol/L",
    "egfr": "mL/min/1.73m2",
    "anc": "x10^9/L",
    "wbc": "x10^9/L",
    "hemoglobin": "g/L",
    "mcv": "fL",
}
CELLS = {
    "b12": ["80", "147", "148", "180", "220", "300", "700", "<100", ">1476"],
    "platelets": ["8", "19", "20", "<20", "40", "95", "150", "250", "451", "600", "1000"],
    "ferritin": ["10", "29", "30", "80", "350", "1200"],
    "crp": ["2", "5", "6", "40"],
    "folate": ["5", "10", "30"],
    "mma": ["0.2", "0.45", "0.6"],
    "tsat": ["10", "30"],
    "holotc": ["20", "25", "30", "35", "80"],
    "homocysteine": ["8", "10", "15", "25", "30"],
    "egfr": ["30", "59", "60", "90"],
    "anc": ["0.3", "<0.5", "0.4", "0.5", "0.8", "1.1", "1.2", "1.5", "2.5", "3", "8", "9"],
    "wbc": ["2", "3.9", "4", "6", "7", "12", "15"],
    "hemoglobin": ["65", "70", "95", "100", "110", "119", "140", "210"],
    "mcv": ["75", "80", "90", "100", "110"],
}
VALUE = {
    analyte: st.sampled_from([f"{cell} {UNITS[analyte]}" for cell in cells])
    for analyte, cells in CELLS.items()
}
CONTEXT = st.fixed_dictionaries(
    {},
    optional={
        "b12_therapy_start": st.integers(0, 120).map(lambda n: TODAY - dt.timedelta(days=n)),
        "alcohol_use": st.sampled_from([True, "stopped"]),
        "neuro_symptoms": st.booleans(),
        "pregnancy_trimester": st.sampled_from([1, 2, 3]),
        "guideline": st.sampled_from(["who", "nice"]),
        "hypersegmented_neutrophils": st.booleans(),
    },
)
PANELS = st.lists(
    st.tuples(st.fixed_dictionaries({}, optional=VALUE), CONTEXT), min_size=1, max_size=6
)


@settings(max_examples=40)
@given(panels=PANELS)
def test_both_evaluators_agree_on_the_facts_of_generated_panels(panels):
    with pytest.MonkeyPatch.context() as monkeypatch:
        seen = _facts_seen(monkeypatch, panels)
    assert set(seen) == {r.id for r in DATA_RULES}  # every data rule saw every panel
    for rule_id, rows in seen.items():
        if rows and rows[0]:
            _agree(RULES[rule_id].logic, rows)


def _timeline(panels) -> None:
    """One patient's panels (each a week or more apart), on B12 therapy from the start of
    the second: the rules see the earlier panels as the history."""
    from b12lab.api import interpret_record
    from b12lab.model import Context
    from b12lab.reading.sources.panel_file import PatientRecord, RawPanel

    first = TODAY - dt.timedelta(days=120)
    record = PatientRecord(
        patient_id="P1",
        sex="female",
        age=50,
        context=Context(b12_therapy_start=first + dt.timedelta(days=panels[1][1])),
        panels=[RawPanel(first + dt.timedelta(days=day), dict(values)) for values, day in panels],
    )
    interpret_record(record, today=TODAY)


TIMELINES = st.lists(
    st.tuples(st.fixed_dictionaries({}, optional=VALUE), st.integers(0, 20)),
    min_size=2,
    max_size=5,
).map(
    # days from the first panel: each panel a week or more after the one before
    lambda panels: [
        (values, 7 * index + sum(gap for _, gap in panels[: index + 1]))
        for index, (values, _) in enumerate(panels)
    ]
)


@settings(max_examples=40)
@given(panels=TIMELINES)
def test_both_evaluators_agree_on_the_facts_of_generated_timelines(panels):
    with pytest.MonkeyPatch.context() as monkeypatch:
        seen = _facts_seen(monkeypatch, panels, _timeline)
    assert set(seen) == {r.id for r in DATA_RULES}
    for rule_id, rows in seen.items():
        if rows and rows[0]:
            _agree(RULES[rule_id].logic, rows)


def test_interpret_imports_no_numpy_for_the_rules():
    code = (
        "import sys\n"
        "from b12lab.api import interpret\n"
        "interpret({'b12': '100 pmol/L', 'platelets': '95 x10^9/L'})\n"
        "print(sorted(m for m in ('numpy', 'yaml') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_rules_markdown_prints_the_catalogue_table_from_the_rules(cli):
    result = cli("rules", "--format", "markdown")
    assert result.exit_code == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == [
        r.id for d in ("b12", "platelets", "neutrophils", "ferritin", "general")
        for r in RULES.values() if r.domain == d
    ]  # fmt: skip
    assert result.stdout.count("| id | severity | trigger | the finding says |") == 5
    critical = next(row for row in rows if row.startswith("| `plt-critical-low` | urgent |"))
    assert "[lab-typical, ctcae-5]" in critical


def test_rules_markdown_of_one_rule_is_its_row(cli):
    result = cli("rules", "plt-extreme-high", "--format", "markdown")
    assert result.exit_code == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| `")]
    assert len(rows) == 1
    assert rows[0].startswith("| `plt-extreme-high` | urgent | ")


def test_docs_list_every_fact_a_rule_may_name():
    from conftest import REPO

    from b12lab.rules.facts import ANALYTES

    guide = (REPO / "docs" / "writing-rules.md").read_text(encoding="utf-8")
    for name in FACTS:
        head, _, suffix = name.partition(".")
        assert f"`{name}`" in guide or (head in ANALYTES and f"`A.{suffix}" in guide), name
