"""The library API the README documents."""

from __future__ import annotations

import pytest

import b12lab
from b12lab import interpret
from b12lab.errors import InputError


def test_interpret_from_the_package_matches_the_readme_example():
    from b12lab import interpret

    report = interpret({"b12": "180 pg/mL", "platelets": "95"}, sex="female")
    assert report.b12_status == "deficient"
    assert "plt-low-consistent-with-b12" in [f.id for f in report.findings]
    document = report.to_dict()
    assert document["b12_status"] == "deficient"
    assert document["measurements"][1]["unit"] == "10^9/L"


def test_aliases_and_loinc_codes_work_as_keys():
    report = b12lab.interpret({"Vitamin B12": "120 pmol/L", "777-3": "95 K/uL"})
    assert [m.analyte for m in report.measurements] == ["b12", "platelets"]


def test_a_laboratory_overlay_can_be_passed_in(tmp_path):
    overlay = tmp_path / "lab.yaml"
    overlay.write_text("default_guideline: nice\n")
    report = b12lab.interpret({"b12": "140 pmol/L"}, ranges=b12lab.load_ranges(overlay))
    assert report.guideline == "nice"
    assert report.b12_status == "borderline"


def test_the_evaluation_date_is_one_option_taking_a_date_or_iso_text(tmp_path):
    import datetime as dt

    import pytest

    from b12lab.errors import InputError

    values = {"b12": "180 pg/mL"}
    wanted = b12lab.interpret(values, as_of=dt.date(2026, 1, 1))
    assert wanted.panel_date == dt.date(2026, 1, 1)
    for name in ("as_of", "today"):
        for given in ("2026-01-01", dt.date(2026, 1, 1)):
            assert b12lab.interpret(values, **{name: given}).panel_date == wanted.panel_date
    with pytest.raises(TypeError, match=r"today takes a datetime\.date or ISO text"):
        b12lab.interpret(values, today=20260101)
    with pytest.raises(InputError, match="as_of '2026-02-30'"):
        b12lab.interpret(values, as_of="2026-02-30")
    with pytest.raises(TypeError, match="not both"):
        b12lab.interpret(values, as_of="2026-01-01", today="2026-01-01")
    with pytest.raises(TypeError, match="date takes"):
        b12lab.interpret(values, date=1.5)
    with pytest.raises(TypeError, match="alcohol_use takes True, False"):
        b12lab.interpret(values, alcohol_use=1)
    with pytest.raises(TypeError, match="neuro_symptoms takes True or False"):
        b12lab.interpret(values, neuro_symptoms="yes")
    with pytest.raises(TypeError, match="values takes a mapping"):
        b12lab.interpret([("b12", "180")])


def test_ranges_is_a_loaded_ranges_or_an_overlay_path_in_every_entry_point(tmp_path):
    import pyarrow as pa

    overlay = tmp_path / "lab.yaml"
    overlay.write_text("analytes:\n  platelets:\n    reference:\n      - {low: 100, high: 400}\n")
    values = {"b12": "400 pmol/L", "platelets": "120"}
    for ranges in (overlay, str(overlay), b12lab.load_ranges(overlay)):
        report = b12lab.interpret(values, ranges=ranges, as_of="2026-01-01")
        assert not report.findings or all("plt-low" not in f.id for f in report.findings)
        table = pa.table({"B12": ["400 pmol/L"], "PLT": ["120"]})
        out = b12lab.interpret_table(table, ranges=ranges, as_of="2026-01-01")
        assert out["platelets_flag"].to_pylist() == ["normal"]
    table = pa.table({"B12": ["400 pmol/L"], "PLT": ["120"]})
    assert b12lab.interpret_table(table, as_of="2026-01-01")["platelets_flag"].to_pylist() == [
        "low"
    ]


def test_interpret_takes_earlier_panels_as_a_timeline():
    report = interpret(
        {"platelets": "200 x10^9/L"},
        date="2026-03-01",
        b12_therapy_start="2026-02-08",
        earlier=[("2026-02-05", {"b12": "100 pmol/L", "platelets": "80 x10^9/L"})],
        as_of="2026-03-01",
    )
    assert "plt-recovered-on-therapy" in [f.id for f in report.findings]
    platelets = report.to_dict()["history"]["platelets"]
    assert [(p["date"], p["value"]) for p in platelets] == [("2026-02-05", 80), ("2026-03-01", 200)]


@pytest.mark.parametrize(
    ("earlier", "error"),
    [
        ({"b12": "100 pmol/L"}, TypeError),  # a panel, not a list of (date, values)
        ([{"b12": "100 pmol/L"}], TypeError),
        ([("2026-02-05", {"b12": "100 pmol/L"})], InputError),  # the latest panel has no date
    ],
)
def test_earlier_panels_of_the_wrong_shape_are_refused(earlier, error):
    with pytest.raises(error):
        interpret({"platelets": "200 x10^9/L"}, earlier=earlier)
