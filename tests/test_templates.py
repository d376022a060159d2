"""NDJSON/JSON records filled from a template equal each panel's own full report.

A template is built once per key from a probe of one panel; every other panel
of the key gets the template filled with its own values. The property test
builds the template from one generated panel and renders ANOTHER panel of the
same key (values moved within their cut-point interval, other decimals, inputs,
patient, date, warnings, errors): the text must be byte for byte the JSON of
that panel's own report. A text quoting a value other than through a slot
would keep the first panel's number and fail it; the tests at the end break a
slot on purpose and check that the comparison notices.
"""

from __future__ import annotations

import datetime as dt
import json

from conftest import TODAY
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b12lab.batch.rows import RowInterpreter
from b12lab.decision import DecisionCore, position, warnings
from b12lab.derived import ANC, EGFR
from b12lab.model import Context, Measurement, Panel, format_number
from b12lab.outcomes import Outcome
from b12lab.ranges import load_ranges
from b12lab.render import templates
from b12lab.render.rows import OutputColumns, record_dict, record_json
from b12lab.render.templates import CLOSE, OPEN, ReportTemplates, json_value

RANGES = load_ranges()
ANALYTES = list(RANGES.analytes)
KEPT = ("ward", 'a "quoted" name')
# Text a patient id, an input, a reading note or a kept cell may hold (no private use:
# the tokens' characters are checked absent from every rendered record).
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Co")), min_size=0, max_size=12)


def full_record(report, lines, kept) -> str:
    """Today's record: the panel's own full report as `record_dict` writes it."""
    document = report.to_dict()
    document["lines"] = list(lines)
    if kept is not None:
        document["kept"] = dict(zip(KEPT, kept, strict=True))
    return json.dumps(document, ensure_ascii=False)


def _interval(cuts: tuple[float, ...], where: int) -> tuple[float, float]:
    """The open interval of position `where` (an even position) among `cuts`."""
    index = where // 2
    low = cuts[index - 1] if index > 0 else 0.0
    high = cuts[index] if index < len(cuts) else (cuts[-1] * 2 if cuts else 100.0) + 10
    return low, high


@st.composite
def _value(draw, cuts: tuple[float, ...], where: int) -> tuple[float, str, int]:
    """A value at position `where`: the number, its text and its decimals."""
    if where % 2:  # on a cut point: the same number, written with other decimals
        value = cuts[where // 2]
        decimals = draw(st.integers(0, 2))
        return value, f"{value:.{decimals}f}", decimals
    low, high = _interval(cuts, where)
    # Near an end too, where the decimals shown grow to keep the value's side.
    fraction = draw(
        st.one_of(
            st.floats(0.001, 0.999),
            st.sampled_from((0.0004, 0.002, 0.5, 0.998, 0.9996)),
        )
    )
    value = low + (high - low) * fraction
    decimals = draw(st.integers(0, 3))
    rounded = round(value, decimals)
    if low < rounded < high and rounded > 0:
        value = rounded
    else:
        decimals = 6
    assert position(value, cuts) == where
    return value, format_number(value, decimals), decimals


@st.composite
def panel_pairs(draw):
    """Two panels of one key, and the guideline they are judged under."""
    guideline = draw(st.sampled_from(("who", "nice")))
    sex = draw(st.sampled_from((None, "female", "male")))
    age = draw(st.sampled_from((None, 0.5, 8, 15, 40, 70, 85.5)))
    trimester = draw(st.sampled_from((None, None, None, 1, 2, 3))) if sex != "male" else None
    limits = RANGES.limits(sex, age, guideline, trimester)
    present = draw(st.lists(st.sampled_from(ANALYTES), unique=True, min_size=1, max_size=9))
    if draw(st.booleans()):  # often ANC derived from its inputs
        present = [a for a in present if a != "anc"] + [a for a in ANC.inputs if a not in present]
    exact = set()
    if ANC.applies(present):
        exact.update(ANC.inputs)
    if EGFR.applies(present):
        exact.update(EGFR.inputs)
    first, second = {}, {}
    for analyte in present:
        spec = RANGES.analytes[analyte]
        cuts = tuple(c for c in limits.cut_points(analyte) if c > 0)
        where = draw(st.integers(0, 2 * len(cuts)))
        unit = spec.canonical_unit
        kind = draw(st.sampled_from(("plain",) * 6 + ("censored", "lab")))
        a, a_text, a_decimals = draw(_value(cuts, where))
        if kind == "censored":
            censored = draw(st.sampled_from(("<", ">", "<=", ">=")))
            shared = Measurement(
                analyte, a, unit, f"{censored}{a_text}", censored=censored, decimals=a_decimals
            )
            first[analyte] = second[analyte] = shared
            continue
        lab = {}
        if kind == "lab":  # a message's own flag and range, quoted as given
            lab = {
                "lab_flag": draw(st.sampled_from(("L", "N", "H", "A"))),
                "lab_reference": draw(st.sampled_from((None, "10-20"))),
            }
        suffix = draw(st.sampled_from(("", f" {unit}")))
        first[analyte] = Measurement(analyte, a, unit, a_text + suffix, decimals=a_decimals, **lab)
        if analyte in exact or kind == "lab":  # the key holds these exactly
            second[analyte] = first[analyte]
            continue
        b, b_text, b_decimals = draw(_value(cuts, where))
        second[analyte] = Measurement(
            analyte,
            b,
            unit,
            b_text + draw(st.sampled_from(("", f" {unit}"))),
            decimals=b_decimals,
            unit_assumed=draw(st.booleans()),
        )
    dated = draw(st.integers(0, 4))
    first_date = TODAY - dt.timedelta(days=draw(st.integers(0, 400))) if dated else None
    second_date = TODAY - dt.timedelta(days=draw(st.integers(0, 400))) if dated else None
    days = draw(st.one_of(st.none(), st.integers(-30, 200)))
    starts: tuple[dt.date | None, dt.date | None] = (None, None)
    days_given = None
    if days is not None and draw(st.booleans()):
        if days < 0:  # a start after the panel: the key holds both dates
            second_date = first_date
        starts = tuple(
            (date or TODAY) - dt.timedelta(days=days) for date in (first_date, second_date)
        )
    elif days is not None and days >= 0:
        days_given = days
    context = {
        "alcohol_use": draw(st.booleans()),
        "neuro_symptoms": draw(st.booleans()),
        "hypersegmented_neutrophils": draw(st.booleans()),
        "pregnancy_trimester": trimester,
        "days_on_therapy": days_given,
    }
    panels = []
    for measurements, date, start in (
        (first, first_date, starts[0]),
        (second, second_date, starts[1]),
    ):
        panels.append(
            Panel(
                measurements=measurements,
                date=date,
                patient_id=draw(st.one_of(st.none(), TEXT)),
                sex=sex,
                age=age,
                context=Context(b12_therapy_start=start, **context),
                warnings=tuple(draw(st.lists(TEXT, max_size=3))),
                errors=tuple(draw(st.lists(TEXT, max_size=2))),
            )
        )
    return guideline, panels[0], panels[1]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(panel_pairs(), st.booleans(), st.lists(st.integers(1, 10**6), min_size=1, max_size=3))
def test_a_template_from_another_panel_of_the_key_gives_that_panels_own_record(
    pair, with_kept, lines
):
    guideline, first, second = pair
    core = DecisionCore(RANGES, guideline, TODAY)
    built = ReportTemplates(core, KEPT if with_kept else ())
    assert built.key(first) == built.key(second)
    built.template(first)  # the key's template comes from the first panel
    kept = ("3 West", "=1+1") if with_kept else None
    text, decision, decided = built.render(second, lines, kept or ())
    report = core.report(second)
    assert text == full_record(report, lines, kept)
    assert OPEN not in text and CLOSE not in text
    assert decision.outcome == Outcome.of(report)
    assert warnings(second.warnings, decided) == report.warnings
    assert len(built.built) == 1  # the second panel used the first one's template


@given(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        TEXT,
        st.lists(st.one_of(TEXT, st.integers(), st.booleans())),
        st.dictionaries(TEXT, TEXT),
    )
)
def test_a_slots_value_is_written_as_json_dumps_writes_it(value):
    assert json_value(value) == json.dumps(value, ensure_ascii=False)


def _pair(first_b12: str, second_b12: str, **context) -> tuple[Panel, Panel]:
    def panel(text: str, date: dt.date) -> Panel:
        b12 = Measurement("b12", float(text), "pmol/L", text, decimals=1)
        platelets = Measurement("platelets", 90, "10^9/L", "90", decimals=0)
        return Panel(
            {"b12": b12, "platelets": platelets},
            date=date,
            patient_id="P1",
            sex="female",
            age=40,
            context=Context(**context),
        )

    return panel(first_b12, TODAY), panel(second_b12, TODAY - dt.timedelta(days=3))


def _rendered_as_own(first: Panel, second: Panel) -> bool:
    core = DecisionCore(RANGES, "who", TODAY)
    built = ReportTemplates(core)
    if built.key(first) != built.key(second):
        return False
    built.template(first)
    text, _, _ = built.render(second, [7])
    return text == full_record(core.report(second), [7], None)


def test_two_panels_of_one_key_quote_each_their_own_values():
    """B12 120 and 130 pmol/L are both deficient: one key, each record its own number."""
    first, second = _pair("120", "130")
    assert _rendered_as_own(first, second)
    core = DecisionCore(RANGES, "who", TODAY)
    built = ReportTemplates(core)
    one, _, _ = built.render(first, [2])
    other, _, _ = built.render(second, [3])
    assert "120 pmol/L" in one and "120 pmol/L" not in other and "130 pmol/L" in other
    assert len(built.built) == 1


def test_templates_stay_bounded(monkeypatch):
    """Past MAX_TEMPLATES the kept templates start again; records stay each their own."""
    monkeypatch.setattr(templates, "MAX_TEMPLATES", 2)
    core = DecisionCore(RANGES, "who", TODAY)
    built = ReportTemplates(core)
    for text in ("120", "180", "300", "130", "700"):  # deficient, borderline, normal, ...
        panel = _pair(text, text)[0]
        rendered, _, _ = built.render(panel, [2])
        assert rendered == full_record(core.report(panel), [2], None)
        assert len(built.built) <= 2


def test_a_quoted_text_holding_the_tokens_characters_gets_no_template():
    """A laboratory's range quoted as given, written with the tokens' private-use
    characters: no template is made of it (the record is then the panel's own full
    report), while the same range without them gets one."""
    core = DecisionCore(RANGES, "who", TODAY)
    built = ReportTemplates(core)

    def panel(reference: str) -> Panel:
        platelets = Measurement(
            "platelets", 95, "10^9/L", "95", decimals=0, lab_flag="N", lab_reference=reference
        )
        return Panel({"platelets": platelets}, sex="female", age=40)

    assert built.render(panel(f"80{OPEN}x{CLOSE}-400"), [2]) is None
    text, _, _ = built.render(panel("80-400"), [2])
    assert text == full_record(core.report(panel("80-400")), [2], None)
    assert "(its range 80-400)" in text


def test_a_value_quoted_without_its_slot_is_caught(monkeypatch):
    """A probe that quotes the value itself (its slot missed) keeps the first panel's
    number in the second panel's record, and the comparison fails."""
    first, second = _pair("120", "130")
    monkeypatch.setattr(templates._QuotedMeasurement, "shown", Measurement.shown)
    assert not _rendered_as_own(first, second)


def test_days_on_therapy_quoted_beyond_the_key_are_caught(monkeypatch):
    """Texts quote the day of therapy; a template key without the exact days would
    quote another panel's day (day 20 and day 25 lie between one pair of cut points)."""
    first, second = _pair("120", "130", days_on_therapy=20)
    twenty_five = Panel(
        second.measurements,
        date=second.date,
        patient_id="P1",
        sex="female",
        age=40,
        context=Context(days_on_therapy=25),
    )
    assert _rendered_as_own(first, second)
    core_key = ReportTemplates.key
    monkeypatch.setattr(ReportTemplates, "key", lambda self, panel: core_key(self, panel)[::2])
    assert not _rendered_as_own(first, twenty_five)


def test_a_panel_date_is_quoted_as_its_own():
    first, second = _pair("120", "130", days_on_therapy=20)
    core = DecisionCore(RANGES, "who", TODAY)
    built = ReportTemplates(core)
    built.render(first, [2])
    text, _, _ = built.render(second, [3])
    assert json.loads(text)["panel_date"] == second.date.isoformat()
    assert TODAY.isoformat() not in text.replace(f'"evaluated_on": "{TODAY}"', "")


# --- whole exports: the batch records are those of the per-panel full reports ---------

COLUMNS = {
    "B12 (pg/mL)": lambda d: d(st.sampled_from(("<100", ">1476", "150", "201", "202.5", ""))
                               | st.integers(90, 1200).map(str)),
    "PLT": lambda d: d(st.integers(5, 900).map(str) | st.sampled_from(("150", "450", "n/a"))),
    "WBC": lambda d: d(st.floats(0.2, 14).map(lambda v: f"{v:.1f}")),
    "neutrophil %": lambda d: d(st.integers(20, 80).map(str)),
    "Ferritin": lambda d: d(st.integers(3, 900).map(lambda v: f"{v} ng/mL")
                            | st.sampled_from(("30", "12 parsecs", ""))),
    "Hemoglobin": lambda d: d(st.floats(6, 17).map(lambda v: f"{v:.1f} g/dL")),
    "creatinine": lambda d: d(st.floats(0.5, 3).map(lambda v: f"{v:.2f} mg/dL") | st.just("")),
    "b12_therapy_start": lambda d: d(st.sampled_from(("", "", "2026-09-01", "2026-11-30"))),
}  # fmt: skip


@st.composite
def exports(draw):
    columns = draw(st.lists(st.sampled_from(list(COLUMNS)), min_size=2, unique=True))
    header = ["patient_id", "collected", "sex", "age", *columns, "ward"]
    rows = []
    for _ in range(draw(st.integers(20, 60))):
        rows.append(
            [
                draw(st.sampled_from(("P001", "P002", "", 'a "b"', "Ünïcode"))),
                draw(st.sampled_from(("2026-08-03", "2026-10-01", "", "03/08/2026"))),
                draw(st.sampled_from(("F", "M", ""))),
                draw(st.sampled_from(("", "8", "45", "70"))),
                *(COLUMNS[c](draw) for c in columns),
                draw(st.sampled_from(("", "3 West", "=cmd()"))),
            ]
        )
    return header, rows


def _records(header, rows, json_records: bool) -> list[str]:
    interpreter = RowInterpreter.for_header(
        header, RANGES, today=TODAY, json_records=json_records, keep=("ward",)
    )
    numbered = [(line, cells, None) for line, cells in enumerate(rows, start=2)]
    columns = OutputColumns(kept=interpreter.columns.kept)
    return [record_json(record, columns) for record in interpreter(numbered)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exports())
def test_batch_json_records_equal_the_full_reports_records(export):
    header, rows = export
    assert _records(header, rows, True) == _records(header, rows, False)


def test_a_templated_records_dict_is_its_reports():
    header, rows = ["patient_id", "B12"], [(2, ["P1", "120 pmol/L"], None)]
    interpreter = RowInterpreter.for_header(header, RANGES, today=TODAY, json_records=True)
    templated = next(interpreter(rows))
    own = next(RowInterpreter.for_header(header, RANGES, today=TODAY)(rows))
    assert templated.report is None and templated.json_text is not None
    assert record_dict(templated) == record_dict(own)


def test_a_laboratorys_rules_get_full_reports():
    """With a laboratory's rules in force (texts that may quote any fact) each record
    is its own full report, as before."""
    from b12lab.rules.catalogue import default_catalogue

    interpreter = RowInterpreter.for_header(
        ["patient_id", "B12"], RANGES, today=TODAY, json_records=True, rules=default_catalogue()
    )
    records = list(interpreter([(2, ["P1", "120 pmol/L"], None)]))
    assert records[0].json_text is None and records[0].report is not None
