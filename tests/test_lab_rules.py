"""A laboratory's rules file: its own rules, changed texts, cornerstone cases, and
`b12lab rules check` replaying every case (b12lab's own too)."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import TODAY, one_clear_line
from test_rules import CASES, TIMELINE_CASES

from b12lab.api import interpret
from b12lab.rules.catalogue import shipped_cases

LAB_RULES = """\
prefix: stm-
rules:
  - id: stm-plt-low-drinking-and-b12
    domain: platelets
    severity: advisory
    title: Low platelets with low B12 and current heavy drinking
    trigger: platelets low, B12 low and alcohol use current
    says: Both alcohol and B12 deficiency lower the count.
    sources: [cowan-1971-alcohol]
    when: platelets.low and b12.low and alcohol.current
    detail: "Platelets {platelets.shown} with B12 {b12.judged} and current heavy drinking."
    evidence:
      platelets: "{platelets.shown}"
changes:
  plt-extreme-high:
    title: Extreme thrombocytosis (call the ward)
cases:
  - name: drinker with low B12 and platelets
    values: {b12: "100 pmol/L", platelets: "95 x10^9/L"}
    context: {alcohol_use: true}
    gives: [stm-plt-low-drinking-and-b12, plt-low-consistent-with-b12]
  - name: abstinent
    values: {b12: "100 pmol/L", platelets: "95 x10^9/L"}
    not: [stm-plt-low-drinking-and-b12]
"""


@pytest.fixture
def lab_rules(tmp_path):
    path = tmp_path / "lab_rules.yaml"
    path.write_text(LAB_RULES, encoding="utf-8")
    return path


def test_a_laboratory_rule_fires_beside_b12labs_own(cli, lab_rules):
    args = ("interpret", "--b12", "100 pmol/L", "--platelets", "95 x10^9/L", "--alcohol-use")
    args = (*args, "-f", "json")
    report = cli.json(*args, "--rules", lab_rules)
    ids = [f["id"] for f in report["findings"]]
    assert "stm-plt-low-drinking-and-b12" in ids
    assert "plt-low-consistent-with-b12" in ids
    assert "stm-plt-low-drinking-and-b12" not in [f["id"] for f in cli.json(*args)["findings"]]


def test_a_laboratory_changes_a_title_and_the_python_api_takes_the_file(lab_rules):
    report = interpret({"platelets": "1000 x10^9/L"}, rules=lab_rules, today=TODAY)
    titles = {f.id: f.title for f in report.findings}
    assert titles["plt-extreme-high"] == "Extreme thrombocytosis (call the ward)"
    plain = interpret({"platelets": "1000 x10^9/L"}, today=TODAY)
    assert {f.id: f.title for f in plain.findings}["plt-extreme-high"] == "Extreme thrombocytosis"


def test_rules_check_replays_every_cornerstone_case_and_exits_0(cli, lab_rules):
    result = cli("rules", "check", lab_rules)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    cases = len(shipped_cases()) + 2
    assert f"{cases} cornerstone cases replayed (2 from" in result.stderr
    assert "0 changed their conclusion" in result.stderr


def test_rules_check_names_each_case_whose_conclusion_changed_and_exits_4(cli, lab_rules):
    text = LAB_RULES.replace(
        "platelets.low and b12.low and alcohol.current", "platelets.high and alcohol.current"
    )
    lab_rules.write_text(text, encoding="utf-8")
    result = cli("rules", "check", lab_rules)
    assert result.exit_code == 4
    assert result.stdout.splitlines() == [
        f"{lab_rules} cases[0] (drinker with low B12 and platelets): does not give "
        "stm-plt-low-drinking-and-b12 (findings: b12-deficient, plt-low-consistent-with-b12, "
        "plt-low-alcohol)"
    ]


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        ("platelets.low and b12.low", "platelets.lo and b12.low", "rules[0].when: unknown fact"),
        ("prefix: stm-", "prefix: plt-", "prefix: 'plt-' is a prefix of b12lab's own rule ids"),
        ("id: stm-plt", "id: plt", "rules[0].id: 'plt-low-drinking-and-b12' does not start"),
        ("title: Extreme", "titel: Extreme", "changes.plt-extreme-high.titel: only texts"),
        ("plt-extreme-high:", "plt-extrem-high:", "did you mean plt-extreme-high"),
        ("gives: [stm-plt", "gives: [stm-plat", "cases[0].gives[0]: no rule"),
        ("context: {alcohol_use", "context: {alcohol", "cases[0].context.alcohol: unknown"),
        ("values: {b12: \"100 pmol/L\", platelets: \"95 x10^9/L\"}\n    not",
         "values: {b12: \"x\"}\n    not",
         "cases[1]: the case cannot be read"),
    ],
)  # fmt: skip
def test_a_bad_rules_file_is_one_line_with_its_dotted_path_exit_2(cli, lab_rules, old, new, said):
    assert old in LAB_RULES
    lab_rules.write_text(LAB_RULES.replace(old, new), encoding="utf-8")
    result = cli("rules", "check", lab_rules)
    assert result.exit_code == 2
    assert said in one_clear_line(result)


@pytest.mark.parametrize(
    ("condition", "said"),
    [
        ("platelets.value < 100", "platelets.value is compared with 100"),
        ("platelets.value < threshold.anc_grade2_below", "with threshold.anc_grade2_below"),
        ("therapy_day > 30", "compare with threshold.b12_response_days"),
        ("platelets.value < anc.value", "platelets.value is compared with anc.value"),
    ],
)
def test_a_laboratory_rule_compares_a_value_only_with_a_threshold_of_its_own(
    cli, lab_rules, condition, said
):
    """A number in a laboratory's rule would have no source, and a batch keys each
    panel by its values' places among the thresholds: refused, naming the thresholds."""
    text = LAB_RULES.replace("platelets.low and b12.low and alcohol.current", condition)
    lab_rules.write_text(text, encoding="utf-8")
    result = cli("rules", "check", lab_rules)
    assert result.exit_code == 2
    line = one_clear_line(result)
    assert "rules[0].when" in line and said in line


GRADED_RULES = """\
prefix: stm-
rules:
  - id: stm-plt-grade2-low-b12
    domain: platelets
    severity: urgent
    title: Moderate thrombocytopenia with low B12
    trigger: platelets at CTCAE grade 2 or worse, B12 low
    says: Call the ward.
    sources: [ctcae-5]
    when: platelets.grade >= 2 and b12.low
    detail: "Platelets {platelets.shown}, B12 {b12.judged}."
"""
BATCH_ROWS = [
    ("P1", "100 pmol/L", "95 x10^9/L"),
    ("P2", "100 pmol/L", "60 x10^9/L"),
    ("P3", "400 pmol/L", "40 x10^9/L"),
    ("P4", "100 pmol/L", "40 x10^9/L"),
    ("P5", "100 pmol/L", "60 x10^9/L"),
    ("P6", "90 pmol/L", "95 x10^9/L"),
]


@pytest.fixture
def graded(tmp_path):
    rules = tmp_path / "graded.yaml"
    rules.write_text(GRADED_RULES, encoding="utf-8")
    export = tmp_path / "export.csv"
    export.write_text(
        "patient_id,b12,platelets\n" + "".join(",".join(row) + "\n" for row in BATCH_ROWS),
        encoding="utf-8",
    )
    return rules, export


def _expected_platelet_findings(rules) -> list[str]:
    """Each row's platelet findings as `interpret` gives them, one panel at a time."""
    found = []
    for _, b12, platelets in BATCH_ROWS:
        report = interpret({"b12": b12, "platelets": platelets}, rules=rules, today=TODAY)
        found.append(" ".join(f.id for f in report.findings if f.domain == "platelets"))
    return found


def test_batch_takes_a_laboratory_rules_file_and_agrees_with_interpret(cli, graded, tmp_path):
    import csv

    rules, export = graded
    out = tmp_path / "out.csv"
    result = cli("batch", export, "--rules", rules, "--as-of", TODAY.isoformat(), "-o", out)
    assert result.exit_code == 0, result.stderr
    records = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["patient_id"] for r in records] == [row[0] for row in BATCH_ROWS]
    expected = _expected_platelet_findings(rules)
    assert [r["platelets_findings"] for r in records] == expected
    assert [("stm-plt-grade2-low-b12" in f) for f in expected] == [
        False, True, False, True, True, False
    ]  # fmt: skip
    assert all("rules_sha256=" in r["provenance"] for r in records)
    plain = tmp_path / "plain.csv"
    assert cli("batch", export, "--as-of", TODAY.isoformat(), "-o", plain).exit_code == 0
    text = plain.read_text(encoding="utf-8")
    assert "stm-" not in text and "rules_sha256" not in text


def test_the_table_api_takes_rules_as_batch_does(graded):
    pa = pytest.importorskip("pyarrow")
    from b12lab.batch.table import interpret_table

    rules, _ = graded
    table = pa.table(
        {
            "patient_id": [row[0] for row in BATCH_ROWS],
            "b12": [row[1] for row in BATCH_ROWS],
            "platelets": [row[2] for row in BATCH_ROWS],
        }
    )
    result = interpret_table(table, rules=str(rules), as_of=TODAY)
    assert result.column("platelets_findings").to_pylist() == _expected_platelet_findings(rules)
    plain = interpret_table(table, as_of=TODAY).column("platelets_findings").to_pylist()
    assert not any("stm-" in f for f in plain if f)


def test_b12lab_ships_a_cornerstone_case_for_every_panel_of_its_rule_table():
    shipped = {
        (c.name, tuple(sorted(c.values.items())), repr(c.earlier)): (c.gives, c.never)
        for c in shipped_cases()
    }
    expected = {}
    for rule_id, fires, near_miss in CASES:
        expected[(f"{rule_id} fires", tuple(sorted(fires[0].items())), "()")] = ((rule_id,), ())
        expected[(f"{rule_id} near miss", tuple(sorted(near_miss[0].items())), "()")] = (
            (),
            (rule_id,),
        )
    for rule_id, fires, near_miss in TIMELINE_CASES:
        for label, ((days_ago, earlier), values, _), outcome in (
            ("fires", fires, ((rule_id,), ())),
            ("near miss", near_miss, ((), (rule_id,))),
        ):
            when = (TODAY - dt.timedelta(days=days_ago)).isoformat()
            key = (f"{rule_id} {label}", tuple(sorted(values.items())), repr(((when, earlier),)))
            expected[key] = outcome
    assert shipped == expected
    contexts = {c.name: c.context for c in shipped_cases()}
    for rule_id, fires, _ in CASES:
        for key, value in fires[1].items():
            given = contexts[f"{rule_id} fires"][key]
            assert given == (value.isoformat() if isinstance(value, dt.date) else value)


def test_a_loaded_rules_file_travels_to_another_process_and_decides_alike(graded):
    """Dask and Spark send the table API's options to their workers pickled."""
    import pickle

    from b12lab.rules.catalogue import load_lab_rules

    rules, _ = graded
    catalogue = load_lab_rules(rules)
    values = {"b12": "100 pmol/L", "platelets": "60 x10^9/L", "ferritin": "8 ug/L", "anc": "0.4"}
    before = interpret(values, rules=catalogue, today=TODAY)  # compiles its conditions
    copy = pickle.loads(pickle.dumps(catalogue))
    after = interpret(values, rules=copy, today=TODAY)
    assert "stm-plt-grade2-low-b12" in [f.id for f in after.findings]
    assert after == before
