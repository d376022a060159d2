"""The library API the README documents."""

from __future__ import annotations

import b12lab


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
