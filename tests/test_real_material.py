"""Public laboratory material read value by value, as a laboratory analyst checks it by hand.

The files in tests/fixtures/real/ come unchanged from their sources (README.md there
names repository, path, commit and licence). Every expected number below is read off
the source file and converted with the factor in reference_ranges.yaml by hand: never
taken from b12lab's own output.

What is checked for each file:
- each result of an analyte is read: analyte, value in the canonical unit, not censored,
  the laboratory's own flag kept, and the date of the result (else of its panel or report);
- `b12lab batch` writes one record per panel with every analyte present;
- `b12lab interpret` dates the panel as the source does, never with the run date;
- the patient's sex and age where the source gives them;
- every test that is not an analyte is counted (notes, plan, warnings), never lost;
- a value whose unit is wrong in the source is refused naming the likely unit;
- a count sent under a code b12lab does not know, named by its display text, is named.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from dataclasses import dataclass, field
from functools import cache

import pytest
from conftest import REPO
from typer.testing import CliRunner

from b12lab.cli import app
from b12lab.messages import ObservationInterpreter, read_observations
from b12lab.ranges import load_ranges

REAL = REPO / "tests" / "fixtures" / "real"
AS_OF = "2026-11-20"  # the run date: no panel of the corpus is from that day


@dataclass(frozen=True)
class Value:
    """One analyte result as the source file holds it, and what it must read as."""

    analyte: str
    value: float  # in the analyte's canonical unit, converted by hand
    unit: str  # the canonical unit
    source: str  # the number as the source prints it
    lab_flag: str | None = None  # the laboratory's own flag (HL7 OBX-8, FHIR interpretation)
    date: str = ""  # collection date of the result (its own, else its panel's or report's)
    within: float = 0.0  # the reporting precision of b12lab when coarser than the source's


@dataclass(frozen=True)
class Refused:
    """A result whose unit is wrong in the source: it must be refused, naming these texts."""

    analyte: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class Named:
    """A count sent under a code b12lab does not know, with an analyte's name as display."""

    code: str
    display: str  # the display text the source gives the code
    words: tuple[str, ...]  # any of these names the analyte (case-insensitive)
    analyte: str
    value: float | None  # what it reads as, if b12lab reads it at all


@dataclass(frozen=True)
class Material:
    name: str
    values: tuple[Value, ...]
    # Records `batch` writes: one per panel (report) holding an analyte result. Two
    # counts where the source leaves it open: a panel whose only analyte result is
    # pending, or a count sent under a code b12lab may read by its display text.
    panels: tuple[int, ...]
    codes: tuple[str, ...] = ()  # the codes of the analyte results that carry a value
    other_tests: tuple[str, ...] = ()  # codes of tests that are not analytes
    refused: tuple[Refused, ...] = ()
    named: tuple[Named, ...] = ()
    sex: str | None = None
    born: dt.date | None = None
    interpret_date: str | None = None  # panel date of `interpret`; None: interpret refuses
    optional_analytes: frozenset[str] = field(default_factory=frozenset)


def years(born: dt.date, on: dt.date) -> float:
    """Completed years plus the part of the year since the last birthday (by hand)."""
    done = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    last = born.replace(year=born.year + done)
    following = born.replace(year=born.year + done + 1)
    return done + (on - last).days / (following - last).days


NIST_OTHER = (
    "26453-1", "20570-8", "28539-5", "28540-3", "30385-9", "26444-0", "30180-4", "26484-6",
    "26485-3", "26449-9", "26450-7", "26474-7", "26478-8", "38892-6", "30400-6", "30424-6",
    "30434-5", "779-9", "10378-8", "6742-1", "11156-7", "11125-2",
)  # fmt: skip
ORU_OTHER = ("11273-0", "20570-8", "26450-7", "26478-8", "26485-3", "30180-4")
CBC_OTHER = (
    "789-8", "4544-3", "785-6", "736-9", "731-0", "5905-5", "742-7", "713-8", "711-2",
    "706-2", "704-7",
)  # fmt: skip
GHP_OTHER = (
    *CBC_OTHER,
    "2951-2", "2823-3", "2075-0", "1963-8", "1863-0", "14749-6", "14937-7", "14933-6",
    "14631-6", "14629-0", "6768-6", "2324-2", "1742-6", "1920-8", "2532-0", "2000-8",
    "13959-2", "14879-1", "2885-2", "1751-7", "10834-0",
    "2756-5", "2887-8", "2965-2", "33051-4", "2349-9", "33052-2", "30405-5", "30391-7",
    "13654-9",
)  # fmt: skip
CBC_CODES = ("718-7", "787-2", "777-3", "6690-2", "770-8", "751-8")
HEMOGLOBIN_IN_G_PER_ML = Refused("hemoglobin", ("12.5", "g/mL", "g/dL"))


def nist(date: str) -> tuple[Value, ...]:
    """NIST LRI CBC: OBX 4-6, 18, 19 (the hemoglobin of OBX 2 is in g/mL: refused)."""
    return (
        # 105600 {cells}/uL: UCUM annotations are unity, so /uL; 105600 /uL = 105.6 10^9/L
        Value("wbc", 105.6, "10^9/L", "105600", "HH", date),
        Value("platelets", 210, "10^9/L", "210000", "N", date),  # 210000 /uL
        Value("mcv", 91, "fL", "91", "N", date),  # LOINC 30428-7
        Value("anc", 58, "10^9/L", "58", "HH", date),  # 58 10*3/uL
        Value("neutrophil_pct", 55, "%", "55", "N", date),  # LOINC 26511-6
    )


def cbc_101(date: str) -> tuple[Value, ...]:
    """FHIR R4 example CBC (report 101 and the GHP panel): Observations r1, r4, r6-r9."""
    return (
        Value("hemoglobin", 176, "g/L", "176", None, date),
        Value("mcv", 99, "fL", "99", "H", date),
        Value("platelets", 444, "10^9/L", "444", None, date),  # 10*9/L
        Value("wbc", 4.6, "10^9/L", "4.6", None, date),
        Value("neutrophil_pct", 20, "%", "20", None, date),  # LOINC 770-8
        Value("anc", 0.9, "10^9/L", "0.9", "LL", date),  # LOINC 751-8
    )


MATERIAL = [
    Material(
        "nist_lri_cbc.hl7",
        nist("2011-01-03"),  # OBR-7 and OBX-14: 20110103143428-0800
        panels=(1,),
        codes=("26464-8", "26515-7", "30428-7", "26499-4", "26511-6"),
        other_tests=NIST_OTHER,
        refused=(HEMOGLOBIN_IN_G_PER_ML,),
        sex="male",
        born=dt.date(1961, 6, 15),
    ),
    Material(
        "nist_lri_cbc_fhir.json",
        nist("2011-01-04"),  # effectiveDateTime 2011-01-04T04:04:28+05:30, as the file writes it
        panels=(1,),
        codes=("26464-8", "26515-7", "30428-7", "26499-4", "26511-6"),
        other_tests=NIST_OTHER,
        refused=(HEMOGLOBIN_IN_G_PER_ML,),
        sex="male",
        born=dt.date(1961, 6, 15),
    ),
    Material(
        "msft_lab_oru_1.hl7",
        # OBX-3 23761-0, OBX-11 P; dated by OBX-14 20141006062700+0700 (OBR-7 is empty)
        (Value("neutrophil_pct", 72, "%", "72", "N", "2014-10-06"),),
        panels=(1, 2),  # the hemogram OBR holds a pending hemoglobin (OBX-11 I, no value)
        codes=("23761-0",),
        other_tests=ORU_OTHER,
        named=(Named("11125-2", "PLATELETS", ("platelet",), "platelets", 221),),  # 221 giga.l-1
        sex="male",
        born=dt.date(1924, 10, 10),
        interpret_date="2014-10-06",
        optional_analytes=frozenset({"platelets", "hemoglobin"}),
    ),
    Material(
        "msft_lab_oru_2.hl7",
        (Value("neutrophil_pct", 72, "%", "72", "N", "2014-10-06"),),  # OBX-14 20141006083000+0700
        panels=(2,),  # the differential (neutrophils) and the hemogram (hemoglobin) OBR
        codes=("23761-0", "20509-6"),
        other_tests=ORU_OTHER,
        # 20509-6 HEMOGLOBIN 13.4 g/l-1: not a concentration; 13.4 is g/dL by its size
        refused=(Refused("hemoglobin", ("13.4", "g/l-1")),),
        named=(
            Named("11125-2", "PLATELETS", ("platelet",), "platelets", 220),  # 220 giga.l-1
            Named(
                "11156-7", "LEUKOCYTES", ("leukocyte", "wbc", "white"), "wbc", 8.2
            ),  # 8.2 giga.l-1
        ),
        sex="male",
        born=dt.date(1924, 10, 10),
        optional_analytes=frozenset({"platelets", "wbc"}),
    ),
    Material(
        "fhir_r4_diagnosticreport-example.json",
        cbc_101("2011-03-04"),  # only the DiagnosticReport is dated: 2011-03-04T08:30:00+11:00
        panels=(1,),
        codes=CBC_CODES,
        other_tests=CBC_OTHER,
        interpret_date="2011-03-04",
    ),
    Material(
        "fhir_r4_diagnosticreport-example-ghp.json",
        # results dated only by their panels (hasMember) and report: 2015-08-16T06:40:17Z
        (
            *cbc_101("2015-08-16"),
            # o8 creatinine 14682-9: 0.09 mmol/L = 90 umol/L
            Value("creatinine", 90, "umol/L", "0.09", None, "2015-08-16"),
        ),
        panels=(1,),
        codes=(*CBC_CODES, "14682-9"),
        other_tests=GHP_OTHER,
        interpret_date="2015-08-16",
    ),
    Material(
        "fhir_r4_observation-example-f005-hemoglobin.json",
        # 7.2 g/dL = 72 g/L; effectivePeriod.start 2013-04-05T10:30:10+01:00
        (Value("hemoglobin", 72, "g/L", "7.2", "L", "2013-04-05"),),
        panels=(1,),
        interpret_date="2013-04-05",
    ),
    Material(
        "fhir_r4_observation-example-f204-creatinine.json",
        (),  # its only result has a local code: see `named`
        panels=(0, 1),
        named=(
            Named("20005", "Creatinine(Serum)", ("creatinine",), "creatinine", 122),
        ),  # 122 umol/L, flag H
        optional_analytes=frozenset({"creatinine"}),
    ),
    Material(
        "us_core_observation-cbc-hemoglobin.json",
        (Value("hemoglobin", 170, "g/L", "17", "N", "2005-07-05"),),  # 17 g/dL
        panels=(1,),
        interpret_date="2005-07-05",
    ),
    Material(
        "us_core_observation-cbc-platelets.json",
        (Value("platelets", 200, "10^9/L", "200", "N", "2005-07-05"),),  # 200 10*3/uL
        panels=(1,),
        interpret_date="2005-07-05",
    ),
    Material(
        "us_core_observation-cbc-leukocytes.json",
        (Value("wbc", 10, "10^9/L", "10", "N", "2005-07-05"),),  # 10 10*3/uL
        panels=(1,),
        interpret_date="2005-07-05",
    ),
    Material(
        "us_core_observation-cbc-mcv.json",
        (Value("mcv", 85, "fL", "85", "N", "2005-07-05"),),
        panels=(1,),
        interpret_date="2005-07-05",
    ),
    Material(
        "us_core_observation-serum-creatinine.json",
        # 1 mg/dL = 10 mg/L / 113.12 g/mol = 88.4 umol/L (b12lab reports whole umol/L)
        (Value("creatinine", 88.4, "umol/L", "1", "H", "2005-07-05", within=0.5),),
        panels=(1,),
        interpret_date="2005-07-05",
    ),
]
WINPATH_NUMERIC_OTHER = (
    "ALP", "<VAL", ">VAL", "UNKONWN_OPERATOR", "GREATER_RANGE", "LESS_RANGE",
    "UNPARSABLE_RANGE", "EMPTY", "GREATER_AND_HIGH",
)  # fmt: skip
MATERIAL += [
    # UCLH WinPath messages: local codes whose OBX-3 text is an analyte's own name
    # ("Vitamin B12", "Serum folate", "White cell count"), read as a long export's test name.
    Material(
        "uclh_winpath_numeric.hl7",
        (
            # 702 pg/mL / 1.3554 = 517.9 pmol/L (1355.4 g/mol); OBR-7 201307241641
            Value("b12", 517.9, "pmol/L", "702", "H", "2013-07-24", within=0.05),
            # 17.6 ng/mL / 0.4414 = 39.9 nmol/L (441.4 g/mol)
            Value("folate", 39.9, "nmol/L", "17.6", None, "2013-07-24", within=0.05),
        ),
        panels=(1,),
        codes=("VB12", "SFOL"),
        other_tests=WINPATH_NUMERIC_OTHER,
        sex="female",
        born=dt.date(1989, 9, 9),
        interpret_date="2013-07-24",
    ),
    Material(
        "uclh_winpath_incremental.hl7",
        # second message of the same order: WCC 10.04 x10\S\9/L (\S\ is the escaped ^)
        (Value("wbc", 10.04, "10^9/L", "10.04", "H", "2019-07-16", within=0.05),),
        panels=(1,),  # two versions of one FBC order (OBR-7 201907162307)
        codes=("WCC",),
        other_tests=("RDWU", "RCC", "DATP", "PER"),
        interpret_date="2019-07-16",
    ),
    Material(
        "uclh_winpath_fbcc.hl7",
        # WCC 16.98 x10\S\9/L, flag H; OBR-7 20130728082700
        (Value("wbc", 16.98, "10^9/L", "16.98", "H", "2013-07-28", within=0.05),),
        panels=(1,),
        codes=("WCC",),
        sex="female",
        born=dt.date(1989, 9, 9),
        interpret_date="2013-07-28",
    ),
]
BY_NAME = {m.name: m for m in MATERIAL}


def test_the_corpus_is_what_the_readme_lists():
    on_disk = sorted(p.name for p in REAL.iterdir() if p.suffix in {".hl7", ".json", ".csv"})
    assert on_disk == sorted([*BY_NAME, SYNTHEA])
    readme = (REAL / "README.md").read_text(encoding="utf-8")
    for name in on_disk:
        assert f"`{name}`" in readme


# --- running b12lab ----------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout + "\n" + self.stderr


@cache
def run(*args: str) -> Run:
    result = CliRunner().invoke(app, list(args))
    return Run(result.exit_code, result.stdout, result.stderr)


def batch(name: str) -> tuple[Run, list[dict]]:
    result = run("batch", str(REAL / name), "--format", "ndjson", "--as-of", AS_OF)
    assert result.exit_code in (0, 3), result.stderr
    assert "Traceback" not in result.stderr
    return result, [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def interpret(name: str) -> Run:
    return run("interpret", str(REAL / name), "--format", "json", "--as-of", AS_OF)


def measured(records: list[dict], analyte: str) -> list[tuple[dict, dict]]:
    return [(r, m) for r in records for m in r["measurements"] if m["analyte"] == analyte]


def said(result: Run, records: list[dict]) -> str:
    """Everything batch told the user: its notes on stderr and every record's words."""
    words = [result.stderr]
    for record in records:
        words += record.get("warnings", []) + record.get("errors", [])
    return "\n".join(words)


def tokens(text: str) -> set[str]:
    """The words of a text, codes such as 718-7, <VAL or WCC kept whole."""
    return set(re.split(r"[\s,:;()'\"]+", text))


def values_of(materials):
    return [pytest.param(m, v, id=f"{m.name}:{v.analyte}") for m in materials for v in m.values]


ALL_VALUES = values_of(MATERIAL)
FILES = [pytest.param(m, id=m.name) for m in MATERIAL]


# --- each value, as an analyst checks it ----------------------------------------------


@pytest.mark.parametrize(("material", "expected"), ALL_VALUES)
def test_each_analyte_value_is_read_in_its_canonical_unit(material, expected):
    _, records = batch(material.name)
    found = measured(records, expected.analyte)
    assert len(found) == 1, f"{expected.analyte} {expected.source}: read {len(found)} times"
    _, measurement = found[0]
    assert measurement["value"] == pytest.approx(expected.value, rel=1e-3, abs=expected.within)
    assert measurement["unit"] == expected.unit
    assert expected.source in measurement["input"]


@pytest.mark.parametrize(("material", "expected"), ALL_VALUES)
def test_each_value_is_exact_not_censored(material, expected):
    _, records = batch(material.name)
    found = measured(records, expected.analyte)
    assert found, f"{expected.analyte} {expected.source} not read"
    for _, measurement in found:
        assert measurement["censored"] is None


@pytest.mark.parametrize(("material", "expected"), ALL_VALUES)
def test_each_value_keeps_the_laboratorys_own_flag(material, expected):
    _, records = batch(material.name)
    found = measured(records, expected.analyte)
    assert found, f"{expected.analyte} {expected.source} not read"
    for _, measurement in found:
        assert measurement.get("lab_flag") == expected.lab_flag


@pytest.mark.parametrize(
    ("material", "expected"),
    [p for p in ALL_VALUES if p.values[1].lab_flag in {"H", "HH", "L", "LL"}],
)
def test_a_laboratory_flag_b12lab_does_not_share_is_named(material, expected):
    """The lab says abnormal: b12lab agrees on the side, or a warning says it does not."""
    _, records = batch(material.name)
    found = measured(records, expected.analyte)
    assert found, f"{expected.analyte} {expected.source} not read"
    record, measurement = found[0]
    side = "high" if expected.lab_flag.startswith("H") else "low"
    if side not in measurement["flag"]:
        flag = re.compile(rf"\b{expected.lab_flag}\b")
        assert any(
            expected.analyte in w and "laborator" in w and flag.search(w)
            for w in record["warnings"]
        ), record["warnings"]


@pytest.mark.parametrize(("material", "expected"), ALL_VALUES)
def test_each_value_has_the_date_of_its_result_panel_or_report(material, expected):
    _, records = batch(material.name)
    found = measured(records, expected.analyte)
    assert found, f"{expected.analyte} {expected.source} not read"
    record, _ = found[0]
    assert record["panel_date"] == expected.date


# --- one record per panel, every analyte present read -------------------------------


@pytest.mark.parametrize("material", FILES)
def test_batch_writes_one_record_per_panel_with_every_analyte_present(material):
    result, records = batch(material.name)
    assert len(records) in material.panels, result.stderr
    read = sorted(m["analyte"] for r in records for m in r["measurements"])
    required = sorted(v.analyte for v in material.values)
    extra = [a for a in read if a not in required]
    assert not [a for a in extra if a not in material.optional_analytes], read
    assert [a for a in read if a in required] == required, result.stderr
    for record in records:  # a result with no date anywhere is read with a warning saying so
        assert record["panel_date"] or any("date" in w for w in record["warnings"]), record


# --- the date: from the result, its panel, its report; never the run date -------------


@pytest.mark.parametrize(
    "material", [pytest.param(m, id=m.name) for m in MATERIAL if m.interpret_date]
)
def test_interpret_dates_the_panel_as_the_source_does(material):
    result = interpret(material.name)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["panel_date"] == material.interpret_date
    assert report["panel_date"] != AS_OF


@pytest.mark.parametrize(
    "material", [pytest.param(m, id=m.name) for m in MATERIAL if m.interpret_date]
)
def test_interpret_reads_the_same_values_as_batch(material):
    result = interpret(material.name)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    got = {m["analyte"]: m for m in report["measurements"]}
    for expected in material.values:
        assert expected.analyte in got, sorted(got)
        assert got[expected.analyte]["value"] == pytest.approx(
            expected.value, rel=1e-3, abs=expected.within
        )
        assert got[expected.analyte]["unit"] == expected.unit


# --- the patient ---------------------------------------------------------------------


def panels_of(name: str) -> list:
    kind = "hl7v2" if name.endswith(".hl7") else "fhir-json"
    records = read_observations((REAL / name).read_bytes(), kind, name)
    interpreter = ObservationInterpreter.for_messages(
        load_ranges(), today=dt.date.fromisoformat(AS_OF)
    )
    return list(interpreter.panels(iter(records)))


@pytest.mark.parametrize("material", [pytest.param(m, id=m.name) for m in MATERIAL if m.sex])
def test_the_patients_sex_and_age_at_collection_are_read(material):
    builders = [b for b in panels_of(material.name) if b.date is not None]
    assert builders
    for builder in builders:
        assert builder.fields.get("sex") == material.sex
        expected = years(material.born, builder.date)
        assert builder.fields.get("age") == pytest.approx(expected, abs=0.01)


# --- tests that are not analytes: counted, never lost --------------------------------


@pytest.mark.parametrize(
    "material", [pytest.param(m, id=m.name) for m in MATERIAL if m.other_tests]
)
def test_batch_names_every_test_it_does_not_read(material):
    result, records = batch(material.name)
    words = tokens(said(result, records))
    missing = [code for code in material.other_tests if code not in words]
    assert not missing, f"not counted anywhere: {missing}"


@pytest.mark.parametrize("material", [pytest.param(m, id=m.name) for m in MATERIAL if m.codes])
def test_no_analyte_result_is_called_a_test_b12lab_does_not_read(material):
    result, records = batch(material.name)
    for line in said(result, records).splitlines():
        if "not an analyte" in line or "not b12lab analytes" in line or "skipped" in line:
            listed = tokens(line)
            assert not [code for code in material.codes if code in listed], line


@pytest.mark.parametrize(
    "material", [pytest.param(m, id=m.name) for m in MATERIAL if m.other_tests]
)
def test_the_plan_counts_every_test_it_does_not_read(material):
    result = run("batch", str(REAL / material.name), "--plan")
    assert result.exit_code == 0, result.stderr
    missing = [code for code in material.other_tests if code not in tokens(result.text)]
    assert not missing, f"not in the plan: {missing}"


@pytest.mark.parametrize(
    "material",
    [pytest.param(m, id=m.name) for m in MATERIAL if m.interpret_date and m.other_tests],
)
def test_interpret_counts_every_test_it_does_not_read(material):
    result = interpret(material.name)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    words = "\n".join(report["warnings"]) + "\n" + result.stderr
    missing = [code for code in material.other_tests if code not in tokens(words)]
    # Every test is named, or the report says how many more it did not read.
    assert not missing or f"{len(missing)} more" in words, f"lost: {missing}"


# --- values refused, codes named -----------------------------------------------------


@pytest.mark.parametrize(
    ("material", "refused"),
    [pytest.param(m, r, id=f"{m.name}:{r.analyte}") for m in MATERIAL for r in m.refused],
)
def test_a_value_whose_unit_is_wrong_is_refused_in_batch_naming_it(material, refused):
    result, records = batch(material.name)
    assert not measured(records, refused.analyte), "read although its unit is wrong"
    errors = [e for r in records for e in r["errors"] if refused.analyte in e]
    assert errors, said(result, records)
    assert any(all(text in e for text in refused.names) for e in errors), errors
    assert result.exit_code == 3  # rows with rejected cells; every panel still has its record


@pytest.mark.parametrize(
    ("material", "refused"),
    [pytest.param(m, r, id=f"{m.name}:{r.analyte}") for m in MATERIAL for r in m.refused],
)
def test_interpret_refuses_a_value_whose_unit_is_wrong_in_one_line(material, refused):
    result = interpret(material.name)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert all(text in lines[0] for text in refused.names), lines[0]


@pytest.mark.parametrize(
    ("material", "named"),
    [pytest.param(m, n, id=f"{m.name}:{n.code}") for m in MATERIAL for n in m.named],
)
def test_a_count_under_an_unknown_code_named_as_an_analyte_is_named(material, named):
    """The code and the analyte its display text names are said together, never dropped.

    Echoing the display text is not enough: b12lab names the analyte itself.
    """
    result, records = batch(material.name)
    lines = said(result, records).splitlines()
    assert any(
        named.code in line
        and any(w in line.casefold().replace(named.display.casefold(), "") for w in named.words)
        for line in lines
    ), "\n".join(lines)


@pytest.mark.parametrize(
    ("material", "named"),
    [pytest.param(m, n, id=f"{m.name}:{n.code}") for m in MATERIAL for n in m.named],
)
def test_a_count_under_an_unknown_code_if_read_reads_its_value(material, named):
    """Nothing else in the file is that analyte: a reading of it must be this result."""
    _, records = batch(material.name)
    for _, measurement in measured(records, named.analyte):
        assert measurement["value"] == pytest.approx(named.value)


def test_the_creatinine_under_a_local_code_is_not_lost_by_interpret():
    """FHIR R4 f204: creatinine 122 umol/L under local code 20005 and no collection date."""
    result = interpret("fhir_r4_observation-example-f204-creatinine.json")
    assert "Traceback" not in result.stderr
    assert "20005" in result.text
    assert "creatinine" in result.text.casefold().replace("creatinine(serum)", "")
    if result.exit_code == 0:
        report = json.loads(result.stdout)
        creatinine = next(m for m in report["measurements"] if m["analyte"] == "creatinine")
        assert creatinine["value"] == pytest.approx(122)
        assert creatinine["lab_flag"] == "H"
        # Only `issued` is given: no collection date anywhere, and the report says so.
        assert report["panel_date"] != AS_OF or any("date" in w for w in report["warnings"])
    else:
        assert result.exit_code == 2


def test_a_preliminary_result_is_read_with_a_warning():
    """LAB-ORU-1: the neutrophil percentage is OBX-11 P."""
    result = interpret("msft_lab_oru_1.hl7")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert any("preliminary" in w for w in report["warnings"]), report["warnings"]


def test_the_nist_wbc_of_105_6_is_high_as_the_laboratory_says():
    _, records = batch("nist_lri_cbc.hl7")
    [(_, wbc)] = measured(records, "wbc")
    assert wbc["flag"] in {"high", "critical_high"}


# --- a long CSV export: Synthea's observations.csv ------------------------------------

SYNTHEA = "synthea_observations.csv"
# LOINC code -> analyte, canonical unit, factor from the file's unit, b12lab's reporting step
SYNTHEA_ANALYTES = {
    "718-7": ("hemoglobin", "g/L", 10.0, 0.5),  # g/dL -> g/L
    "777-3": ("platelets", "10^9/L", 1.0, 0.5),  # 10*3/uL is 10^9/L
    "6690-2": ("wbc", "10^9/L", 1.0, 0.05),  # 10*3/uL
    "787-2": ("mcv", "fL", 1.0, 0.5),
    "38483-4": ("creatinine", "umol/L", 10_000 / 113.12, 0.5),  # mg/dL -> umol/L
    # GFR/1.73 sq M.predicted written "mL/min": the code itself is per 1.73 m2
    "33914-3": ("egfr", "mL/min/1.73m2", 1.0, 0.5),
}


def synthea_rows() -> list[tuple[int, dict]]:
    with (REAL / SYNTHEA).open(newline="", encoding="utf-8") as handle:
        return list(enumerate(csv.DictReader(handle), start=2))


SYNTHEA_VALUES = [
    pytest.param(line, row, id=f"line {line}:{SYNTHEA_ANALYTES[row['CODE']][0]}")
    for line, row in synthea_rows()
    if row["CODE"] in SYNTHEA_ANALYTES
]


def test_the_synthea_export_holds_33_analyte_values_in_14_panels():
    """What the README says of the file, counted from the file itself."""
    rows = [row for _, row in synthea_rows() if row["CODE"] in SYNTHEA_ANALYTES]
    assert len(rows) == 33
    assert len({(row["PATIENT"], row["DATE"][:10]) for row in rows}) == 14


@pytest.mark.parametrize(("line", "row"), SYNTHEA_VALUES)
def test_each_value_of_the_synthea_export_is_read(line, row):
    analyte, unit, factor, step = SYNTHEA_ANALYTES[row["CODE"]]
    _, records = batch(SYNTHEA)
    panel = [
        r
        for r in records
        if r["patient_id"] == row["PATIENT"] and r["panel_date"] == row["DATE"][:10]
    ]
    assert len(panel) == 1, f"{len(panel)} records for one panel"
    found = [m for m in panel[0]["measurements"] if m["analyte"] == analyte]
    assert found, f"line {line}: {analyte} {row['VALUE']} {row['UNITS']} not read: {panel[0]}"
    measurement = found[0]
    assert measurement["value"] == pytest.approx(float(row["VALUE"]) * factor, abs=step)
    assert measurement["unit"] == unit
    assert measurement["censored"] is None
    assert measurement.get("lab_flag") is None  # the export carries no laboratory flag


def test_batch_writes_one_record_per_panel_of_the_synthea_export():
    _, records = batch(SYNTHEA)
    panels = {
        (row["PATIENT"], row["DATE"][:10])
        for _, row in synthea_rows()
        if row["CODE"] in SYNTHEA_ANALYTES
    }
    with_results = [
        (r["patient_id"], r["panel_date"]) for r in records if r["measurements"] or r["errors"]
    ]
    assert sorted(with_results) == sorted(panels)
    for record in records:
        read = {m["analyte"] for m in record["measurements"]}
        expected = {
            SYNTHEA_ANALYTES[row["CODE"]][0]
            for _, row in synthea_rows()
            if row["CODE"] in SYNTHEA_ANALYTES
            and (row["PATIENT"], row["DATE"][:10]) == (record["patient_id"], record["panel_date"])
        }
        assert read == expected, record


def test_batch_and_its_plan_count_every_test_of_the_export_it_does_not_read():
    others = sorted({row["CODE"] for _, row in synthea_rows()} - set(SYNTHEA_ANALYTES))
    assert len(others) == 91
    result, records = batch(SYNTHEA)
    assert not [code for code in others if code not in tokens(said(result, records))]
    plan = run("batch", str(REAL / SYNTHEA), "--plan")
    assert plan.exit_code == 0, plan.stderr
    assert not [code for code in others if code not in tokens(plan.text)]


def test_interpret_sends_a_long_export_to_batch_in_one_line():
    result = interpret(SYNTHEA)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "b12lab batch" in lines[0]
    assert "YAML" not in lines[0]
