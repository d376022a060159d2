"""FHIR R4 and HL7 v2 files through `b12lab interpret` and `b12lab batch`."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from conftest import REPO, SAMPLES, one_clear_line

from b12lab.messages import age_in_years

FIXTURES_DIR = REPO / "tests" / "fixtures"
BUNDLE = SAMPLES / "fhir_bundle.json"
BULK = SAMPLES / "fhir_bulk.ndjson"
ORU = SAMPLES / "oru_r01.hl7"
SEARCHSET = FIXTURES_DIR / "searchset.json"
ORU_MLLP = FIXTURES_DIR / "oru_mllp.hl7"
ORU_BATCH = FIXTURES_DIR / "oru_batch.hl7"

MSH = "MSH|^~\\&|LIS|LAB|EHR|WARD|202611021405||ORU^R01|M{n}|P|2.5.1"


def oru(*segments: str, n: int = 1) -> str:
    """One ORU^R01 message, segments separated by CR as on the wire."""
    return "\r".join([MSH.format(n=n), *segments]) + "\r"


def observation(code: str, value=None, unit=None, *, patient="p1", day="2026-11-02", **extra):
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": day,
    }
    if value is not None:
        quantity = {"value": value}
        if unit:
            quantity["code"] = unit
        resource["valueQuantity"] = quantity
    resource.update(extra)
    return resource


def ndjson(*resources) -> str:
    return "".join(json.dumps(r) + "\n" for r in resources)


def csv_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def write(tmp_path):
    def write(name: str, text: str):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


# --- interpret ------------------------------------------------------------------


def test_interpret_of_the_sample_bundle_reads_the_patients_panel(cli):
    result = cli("interpret", BUNDLE, "--format", "json", "--as-of", "2026-11-20")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["patient_id"] == "MRN-40211"
    assert report["panel_date"] == "2026-11-02"
    assert report["b12_status"] == "deficient"
    ids = [f["id"] for f in report["findings"]]
    assert "plt-low-consistent-with-b12" in ids
    assert "fer-may-mask-iron-deficiency" in ids
    b12 = next(m for m in report["measurements"] if m["analyte"] == "b12")
    assert b12["value"] == pytest.approx(132.8)
    assert (b12["lab_reference"], b12["lab_flag"]) == ("200-900 pg/mL", "L")


def test_interpret_of_one_patient_hl7_message_with_mllp_framing_reads_obx_values(cli, write):
    first_message = ORU_MLLP.read_bytes().split(b"\x1c")[0] + b"\x1c\r"
    path = tmp = write("one.hl7", first_message.decode("latin-1"))
    result = cli("interpret", path, "--format", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert tmp.exists()
    assert report["patient_id"] == "H-55012"
    assert report["b12_status"] == "deficient"
    values = {m["analyte"]: m["value"] for m in report["measurements"]}
    assert values["platelets"] == 95
    assert values["anc"] == pytest.approx(1.1)


@pytest.mark.parametrize("sample, patients", [(BULK, 2), (ORU, 2), (ORU_BATCH, 2)])
def test_interpret_of_several_patients_asks_for_batch(cli, sample, patients):
    result = cli("interpret", sample)
    assert result.exit_code == 2
    line = one_clear_line(result)
    assert f"holds {patients} patients" in line
    assert "use b12lab batch" in line


def test_interpret_flags_override_the_files_values(cli):
    result = cli("interpret", BUNDLE, "--b12", "600 pg/mL", "--format", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["b12_status"] == "normal"
    b12 = next(m for m in report["measurements"] if m["analyte"] == "b12")
    assert b12["input"] == "600 pg/mL"
    assert "lab_flag" not in b12  # the laboratory's flag belonged to the replaced result


def test_interpret_of_one_patient_over_several_dates_is_a_timeline(cli, write):
    path = write(
        "timeline.ndjson",
        ndjson(
            observation("2132-9", 110, "pmol/L", day="2026-09-01"),
            observation("777-3", 90, "10*9/L", day="2026-09-01"),
            observation("2132-9", 400, "pmol/L", day="2026-11-01"),
            observation("777-3", 210, "10*9/L", day="2026-11-01"),
        ),
    )
    report = cli.json("interpret", path, "--format", "json")
    assert report["panel_date"] == "2026-11-01"
    assert [p["date"] for p in report["history"]["b12"]] == ["2026-09-01", "2026-11-01"]


def test_interpret_of_a_malformed_resource_exits_2_naming_it(cli, write):
    path = write(
        "bad.ndjson",
        ndjson(observation("2132-9", 110, "pmol/L")) + '{"resourceType": "Observation", \n',
    )
    result = cli("interpret", path)
    assert result.exit_code == 2
    line = one_clear_line(result)
    assert "line 2" in line and "not valid JSON" in line


def test_interpret_of_a_truncated_hl7_message_exits_2(cli, write):
    path = write("cut.hl7", oru("PID|1||P-1||X^Y||19700101|F", "OBR|1||A-1|X|||20261102"))
    result = cli("interpret", path)
    assert result.exit_code == 2
    assert "no OBX result segments" in one_clear_line(result)


def test_interpret_of_a_bundle_without_entries_exits_2(cli, write):
    path = write("empty.json", '{"resourceType": "Bundle", "type": "collection", "entry": []}')
    result = cli("interpret", path)
    assert result.exit_code == 2
    assert "no result of a test b12lab reads" in one_clear_line(result)


def test_interpret_reads_a_bundle_from_stdin(cli):
    result = cli("interpret", "-", "--format", "json", input=BUNDLE.read_text())
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["patient_id"] == "MRN-40211"


def test_interpret_of_a_panel_file_is_unchanged_by_detection(cli):
    report = cli.json("interpret", SAMPLES / "panel.yaml", "--format", "json")
    assert report["patient_id"] == "P001"


def test_hl7_local_code_is_read_through_map(cli, write):
    path = write(
        "local.hl7",
        oru(
            "PID|1||S-9001||Local^Cy||19810102|F",
            "OBR|1||ACC-1|SLB9|||20261104",
            "OBX|1|NM|SLB9^Ferritin (SLAB)^99SLAB||12|ng/mL|30-300|L|||F",
        ),
    )
    unmapped = cli("interpret", path)
    assert unmapped.exit_code == 2
    assert "names ferritin" in unmapped.stderr and "--map 'SLB9=ferritin'" in unmapped.stderr
    report = cli.json("interpret", path, "--map", "SLB9=ferritin", "--format", "json")
    ferritin = next(m for m in report["measurements"] if m["analyte"] == "ferritin")
    assert (ferritin["value"], ferritin["flag"], ferritin["lab_flag"]) == (12, "low", "L")


def test_hl7_local_code_named_by_an_analyte_alias_is_read_by_that_name(cli, write):
    path = write(
        "local_named.hl7",
        oru(
            "PID|1||S-9001||Local^Cy||19810102|F",
            "OBR|1||ACC-1|SLB9|||20261104",
            "OBX|1|NM|VB12^Vitamin B12^99SLAB||702|pg/mL|191-663|H|||F",
        ),
    )
    report = cli.json("interpret", path, "--format", "json")
    b12 = next(m for m in report["measurements"] if m["analyte"] == "b12")
    assert (b12["value"], b12["lab_flag"]) == (517.9, "H")


# --- the laboratory's own flag ----------------------------------------------------


@pytest.mark.parametrize(
    "value, lab_flag, warned",
    [
        ("450", "H", False),  # both high
        ("120", "H", True),  # the lab's upper limit is lower than b12lab's
        ("120", "N", False),
        ("450", "N", True),
        ("8", "LL", False),  # critical low at the lab, low in b12lab: the same side
        ("120", "A", False),  # abnormal without a side: not compared
    ],
)
def test_a_lab_flag_on_another_side_than_b12labs_is_a_warning(cli, write, value, lab_flag, warned):
    path = write(
        "flag.hl7",
        oru(
            "PID|1||P-7||X^Y||19700101|F",
            "OBR|1||A-7|F|||20261102",
            f"OBX|1|NM|2276-4^Ferritin^LN||{value}|ug/L|13-100|{lab_flag}|||F",
        ),
    )
    report = cli.json("interpret", path, "--format", "json")
    disagreements = [w for w in report["warnings"] if "the laboratory flags" in w]
    assert bool(disagreements) is warned
    if warned:
        flag = next(m["flag"] for m in report["measurements"] if m["analyte"] == "ferritin")
        assert f"as {lab_flag} (its range 13-100)" in disagreements[0]
        assert f"b12lab flags it {flag}" in disagreements[0]


def test_measurements_without_a_lab_range_carry_no_lab_keys(cli):
    report = cli.json("interpret", "--b12", "180 pg/mL", "--format", "json")
    assert "lab_flag" not in report["measurements"][0]
    assert "lab_reference" not in report["measurements"][0]


# --- batch ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "sample, expected",
    [
        (BUNDLE, [("MRN-40211", "2026-11-02", "deficient")]),
        (SEARCHSET, [("S-0077", "2026-10-01", "deficient"), ("p-78", "2026-10-02", "unknown")]),
        (BULK, [("BULK-001", "2026-09-14", "deficient"), ("BULK-002", "2026-09-15", "normal")]),
        (
            ORU,
            [
                ("H-55012", "2026-11-02", "deficient"),
                ("H-55013", "2026-11-03", "unknown"),  # OBR 1: the blood count
                ("H-55013", "2026-11-03", "deficient"),  # OBR 2: the B12 panel
            ],
        ),
        (ORU_MLLP, [("H-55012", "2026-11-02", "deficient"), ("S-9001", "2026-11-04", "unknown")]),
    ],
)
def test_batch_of_each_sample_gives_one_record_per_panel_in_input_order(cli, sample, expected):
    result = cli("batch", sample)
    assert result.exit_code == 0, result.stderr
    rows = csv_rows(result.stdout)
    assert [(r["patient_id"], r["panel_date"], r["b12_status"]) for r in rows] == expected
    lines = [int(r["line"]) for r in rows]
    assert lines == sorted(lines)


def test_batch_summary_counts_skipped_resource_types(cli):
    result = cli("batch", BULK)
    assert "skipped: Encounter 1" in result.stderr
    result = cli("batch", BUNDLE)
    assert "skipped: Specimen 1" in result.stderr


def test_batch_summary_counts_skipped_message_types(cli, write):
    adt = "MSH|^~\\&|ADT|H|X|Y|20261101||ADT^A08|A1|P|2.5\rPID|1||P-1\r"
    path = write("mixed.hl7", adt + ORU.read_text(encoding="latin-1"))
    result = cli("batch", path)
    assert result.exit_code == 0, result.stderr
    assert "skipped: ADT^A08 1" in result.stderr
    assert len(csv_rows(result.stdout)) == 3


def test_batch_puts_each_unreadable_record_in_its_own_row_and_the_errors_file(cli, write, tmp_path):
    path = write(
        "bulk.ndjson",
        ndjson(observation("2132-9", 110, "pmol/L", patient="a"))
        + "{not json\n"
        + ndjson(
            {"resourceType": "Observation", "status": "final", "subject": {"reference": "x"}},
            observation("2132-9", 400, "pmol/L", patient="b"),
        ),
    )
    errors = tmp_path / "rejected.csv"
    result = cli("batch", path, "--errors", errors)
    assert result.exit_code == 3
    rows = csv_rows(result.stdout)
    assert [r["patient_id"] for r in rows] == ["a", "", "x", "b"]
    assert [bool(r["error"]) for r in rows] == [False, True, True, False]
    assert "not valid JSON" in rows[1]["error"]
    assert "no code" in rows[2]["error"]
    rejected = csv_rows(errors.read_text())
    assert [r["line"] for r in rejected] == ["2", "3"]


def test_batch_of_a_truncated_hl7_message_keeps_the_good_one(cli, write):
    cut = oru("PID|1||P-2||X^Y||19700101|F", "OBR|1||A-2|X|||20261102", n=2)
    path = write("two.hl7", ORU_MLLP.read_text(encoding="latin-1") + cut)
    result = cli("batch", path)
    assert result.exit_code == 3
    rows = csv_rows(result.stdout)
    assert len(rows) == 3
    assert rows[0]["b12_status"] == "deficient" and not rows[0]["error"]
    assert "no OBX result segments" in rows[2]["error"]


@pytest.mark.parametrize("output_format", ["ndjson", "json", "fhir-ndjson"])
def test_batch_of_fhir_writes_every_output_format(cli, output_format):
    result = cli("batch", BULK, "--format", output_format)
    assert result.exit_code == 0, result.stderr
    if output_format == "json":
        documents = json.loads(result.stdout)
    else:
        documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(documents) == 2
    if output_format == "fhir-ndjson":
        assert {d["resourceType"] for d in documents} == {"Bundle"}
    else:
        assert [d["patient_id"] for d in documents] == ["BULK-001", "BULK-002"]


def test_batch_json_carries_the_laboratorys_flag(cli):
    result = cli("batch", ORU, "--format", "ndjson")
    first = json.loads(result.stdout.splitlines()[0])
    platelets = next(m for m in first["measurements"] if m["analyte"] == "platelets")
    assert (platelets["lab_reference"], platelets["lab_flag"]) == ("150-450", "L")


def test_batch_csv_quotes_each_value_the_laboratory_flagged_differently(cli, write):
    """Two patients' platelets on one side of every cut point, each flagged N by the
    laboratory: each row's warning quotes its own value."""
    messages = "".join(
        oru(
            f"PID|1||P-{n}||X^Y||19700101|F",
            f"OBR|1||A-{n}|CBC^Blood count^L|||20261102",
            f"OBX|1|NM|777-3^Platelets^LN||{value}|10*9/L|150-450|N|||F",
            n=n,
        )
        for n, value in ((1, "95"), (2, "96"))
    )
    result = cli("batch", write("two.hl7", messages))
    assert result.exit_code == 0, result.stderr
    warnings = [row["warnings"] for row in csv_rows(result.stdout)]
    assert "flags 95 10*9/L as N" in warnings[0] and "flags 96" not in warnings[0]
    assert "flags 96 10*9/L as N" in warnings[1]


def test_batch_fail_on_urgent_exits_4(cli):
    assert cli("batch", ORU, "--fail-on", "urgent").exit_code == 4
    assert cli("batch", BULK, "--fail-on", "urgent").exit_code == 0


def test_batch_timeline_merges_a_patients_orders_of_one_day(cli):
    result = cli("batch", ORU, "--timeline")
    assert result.exit_code == 0, result.stderr
    rows = csv_rows(result.stdout)
    assert [(r["patient_id"], r["b12_status"]) for r in rows] == [
        ("H-55012", "deficient"),
        ("H-55013", "deficient"),
    ]
    assert rows[1]["platelets_flag"] == "low"  # the corrected count, 26


def test_batch_of_an_empty_bundle_writes_no_records(cli, write):
    path = write("empty.json", '{"resourceType": "Bundle", "type": "searchset", "entry": []}')
    result = cli("batch", path)
    assert result.exit_code == 0
    assert csv_rows(result.stdout) == []
    assert "0 panels" in result.stderr


def test_batch_of_only_other_resource_types_counts_them(cli, write):
    path = write(
        "other.ndjson",
        ndjson(
            {"resourceType": "Encounter", "id": "e1"},
            {"resourceType": "MedicationRequest", "id": "m1"},
            {"resourceType": "MedicationRequest", "id": "m2"},
        ),
    )
    result = cli("batch", path)
    assert result.exit_code == 0
    assert csv_rows(result.stdout) == []
    assert "skipped: Encounter 1, MedicationRequest 2" in result.stderr


def test_a_panel_of_other_tests_only_is_counted_not_written(cli, write):
    path = write(
        "vitals.ndjson",
        ndjson(
            observation("8867-4", 72, "/min", patient="a"),
            observation("2132-9", 300, "pmol/L", patient="b"),
            observation("8867-4", 80, "/min", patient="b"),
        ),
    )
    result = cli("batch", path)
    assert [r["patient_id"] for r in csv_rows(result.stdout)] == ["b"]
    assert "panels of other tests only, skipped: 8867-4 1" in result.stderr


def test_a_value_without_a_unit_is_read_in_the_canonical_unit_with_a_warning(cli, write):
    path = write("nounit.ndjson", ndjson(observation("2132-9", 300)))
    result = cli("batch", path)
    assert result.exit_code == 0
    row = csv_rows(result.stdout)[0]
    assert row["b12_status"] == "normal"
    assert "no unit given" in row["warnings"]


def test_a_cancelled_result_is_missing_with_a_note(cli):
    rows = csv_rows(cli("batch", ORU).stdout)
    assert "mma" in rows[2]["warnings"] and "cancelled" in rows[2]["warnings"]


def test_unstated_sex_is_not_given_with_a_note(cli, write):
    patient = {"resourceType": "Patient", "id": "p1", "gender": "unknown"}
    path = write("sex.ndjson", ndjson(patient, observation("718-7", 110, "g/L")))
    rows = csv_rows(cli("batch", path).stdout)
    assert "sex is 'unknown' in the source" in rows[0]["warnings"]
    assert "sex not given" in rows[0]["warnings"]


# --- --input-format ---------------------------------------------------------------


def test_input_format_forces_the_reader(cli, write):
    path = write("panel.txt", BUNDLE.read_text())
    assert cli("batch", path, "--input-format", "fhir").exit_code == 0
    result = cli("batch", path, "--input-format", "hl7v2")
    assert result.exit_code == 2
    assert "no HL7 v2 message" in one_clear_line(result)


@pytest.mark.parametrize(
    "command, sample, forced, message",
    [
        ("interpret", SAMPLES / "panel.yaml", "hl7v2", "no HL7 v2 message"),
        ("interpret", ORU, "fhir", "not valid JSON"),
        ("interpret", SAMPLES / "long_lis.csv", "csv", "read by b12lab batch"),
        ("batch", SAMPLES / "panel.yaml", "yaml", "not a panel file"),
        ("batch", BULK, "hl7v2", "no HL7 v2 message"),
    ],
)
def test_a_forced_format_that_does_not_fit_is_one_clear_error(
    cli, command, sample, forced, message
):
    result = cli(command, sample, "--input-format", forced)
    assert result.exit_code == 2
    assert message in one_clear_line(result)


def test_forcing_ndjson_reads_a_single_line_file(cli, write):
    path = write("one.ndjson", ndjson(observation("2132-9", 300, "pmol/L")))
    result = cli("batch", path, "--input-format", "fhir-ndjson")
    assert result.exit_code == 0
    assert len(csv_rows(result.stdout)) == 1


def test_batch_of_a_csv_export_is_unchanged_by_detection(cli):
    result = cli("batch", SAMPLES / "long_lis.csv")
    assert result.exit_code in (0, 3)
    assert csv_rows(result.stdout)


# --- age from birth date --------------------------------------------------------------


@pytest.mark.parametrize(
    "birth, on, age",
    [
        (dt.date(1972, 5, 14), dt.date(2026, 5, 14), 54.0),
        (dt.date(1972, 5, 14), dt.date(2026, 5, 13), pytest.approx(53.997, abs=0.001)),
        (dt.date(2008, 2, 29), dt.date(2026, 2, 28), 18.0),
        (dt.date(2026, 5, 1), dt.date(2026, 11, 1), pytest.approx(0.504, abs=0.001)),
    ],
)
def test_age_at_collection_is_exact_at_birthdays(birth, on, age):
    assert age_in_years(birth, on) == age


def test_a_birth_date_after_collection_is_a_row_error(cli, write):
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "2027-01-01"}
    path = write("born.ndjson", ndjson(patient, observation("2132-9", 300, "pmol/L")))
    result = cli("batch", path)
    assert result.exit_code == 3
    assert "after the collection date" in csv_rows(result.stdout)[0]["error"]


# --- values that cannot be read, and standard input ---------------------------------


def test_a_nan_b12_value_is_refused_naming_it_not_read_as_missing(cli, write):
    path = write(
        "nan.ndjson",
        ndjson(
            observation("2132-9", float("nan"), "pg/mL", id="b12-1"),
            observation("777-3", 95, "10*9/L"),
        ),
    )
    assert "NaN" in path.read_text()  # as Python's json writes it; NaN is not JSON
    result = cli("interpret", path)
    assert result.exit_code == 2
    line = one_clear_line(result)
    assert "line 1: line is not valid JSON (NaN is not a JSON number)" in line
    result = cli("batch", path, "--as-of", "2026-11-20")
    assert result.exit_code == 3
    rows = csv_rows(result.stdout)
    assert [(r["line"], bool(r["error"])) for r in rows] == [("1", True), ("2", False)]
    assert "NaN is not a JSON number" in rows[0]["error"]


@pytest.mark.parametrize(
    ("quantity", "reason"),
    [
        ({"value": True}, "valueQuantity.value is true, not a number"),
        ({"value": [1]}, "valueQuantity.value is a list, not a number"),
        ({"value": {"a": 1}}, "valueQuantity.value is an object, not a number"),
        ("oops", "valueQuantity is the text 'oops'"),
    ],
)
def test_a_value_of_the_wrong_json_type_is_an_unreadable_record(cli, write, quantity, reason):
    path = write(
        "typed.ndjson",
        ndjson(observation("2132-9", 300, "pg/mL"), observation("777-3", valueQuantity=quantity)),
    )
    result = cli("batch", path, "--as-of", "2026-11-20")
    assert result.exit_code == 3
    rows = csv_rows(result.stdout)
    assert [(r["line"], r["b12_status"], bool(r["error"])) for r in rows] == [
        ("1", "normal", False),
        ("2", "unknown", True),
    ]
    assert rows[1]["error"].startswith("line 2: Observation (777-3): " + reason)
    assert "no value in the source" not in result.output


def test_batch_reads_ndjson_from_a_pipe_as_it_reads_the_file(write, tmp_path):
    import subprocess
    import sys

    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"value": "MRN-7"}],
        "gender": "male",
        "birthDate": "1970-01-01",
    }
    path = write(
        "late_patient.ndjson",
        ndjson(observation("718-7", 12.5, "g/dL"), observation("2132-9", 400, "pg/mL"), patient),
    )
    command = [sys.executable, "-m", "b12lab", "batch", "--as-of", "2026-11-20", "--no-progress"]
    by_path = subprocess.run([*command, str(path)], capture_output=True, check=False)
    piped = subprocess.run(
        [*command, "-"], input=path.read_bytes(), capture_output=True, check=False
    )
    assert (by_path.returncode, piped.returncode) == (0, 0), piped.stderr
    assert piped.stdout == by_path.stdout
    (row,) = csv_rows(piped.stdout.decode())
    assert row["patient_id"] == "MRN-7"
    assert "anemia-present" in row["other_findings"]
    assert "sex not given" not in row["warnings"]


@pytest.mark.parametrize("value", ["1,5", "1,500"])
def test_an_hl7_nm_value_with_a_comma_is_refused(cli, write, value):
    path = write(
        "comma.hl7",
        oru(
            "PID|1||P-1||X^Y||19700101|F",
            "OBR|1||A-1|X|||202611020800",
            "OBX|1|NM|2132-9^B12^LN||300|pg/mL|||||F",
            f"OBX|2|NM|2276-4^Ferritin^LN||{value}|ug/L|||||F",
        ),
    )
    result = cli("interpret", path)
    assert result.exit_code == 2
    assert f"OBX 2 (2276-4): OBX-5 '{value}' is not an HL7 number" in one_clear_line(result)
    result = cli("batch", path, "--as-of", "2026-11-20")
    assert result.exit_code == 3
    rows = csv_rows(result.stdout)
    assert [bool(r["error"]) for r in rows] == [False, True]
    assert rows[0]["ferritin_ug_l"] == ""
    assert "decimal point" in rows[1]["error"] and rows[1]["patient_id"] == "P-1"


def test_an_hl7_nm_value_with_a_decimal_point_is_read(cli, write):
    path = write(
        "point.hl7",
        oru(
            "PID|1||P-1||X^Y||19700101|F",
            "OBR|1||A-1|X|||202611020800",
            "OBX|1|NM|2276-4^Ferritin^LN||1.5|ug/L|||||F",
        ),
    )
    result = cli("batch", path, "--as-of", "2026-11-20")
    assert result.exit_code == 0, result.stderr
    assert csv_rows(result.stdout)[0]["ferritin_ug_l"] == "1.5"


def test_a_fhir_unit_text_that_disagrees_with_its_ucum_code_is_said(cli, write):
    b12 = observation("2132-9", 180, "pmol/L")
    b12["valueQuantity"]["unit"] = "pg/mL"  # 180 pg/mL would be deficient
    plt = observation("777-3", 180, "10*9/L")
    plt["valueQuantity"]["unit"] = "x10E9/L"  # the same unit, spelled otherwise
    ferritin = observation("2276-4", 40, "ng/mL")
    ferritin["valueQuantity"]["unit"] = "nanograms per millilitre"  # a description
    path = write("units.ndjson", ndjson(b12, plt, ferritin))
    result = cli("batch", path, "--as-of", "2026-11-20")
    assert result.exit_code == 0, result.stderr
    (row,) = csv_rows(result.stdout)
    assert row["b12_status"] == "borderline"  # the UCUM code's pmol/L
    assert "not 'pg/mL' from the unit text" in row["warnings"]
    assert "x10E9" not in row["warnings"] and "nanograms" not in row["warnings"]
    strict = cli("batch", path, "--as-of", "2026-11-20", "--strict")
    assert strict.exit_code == 3
    assert "units disagree" in csv_rows(strict.stdout)[0]["error"]


def test_an_hl7_unit_text_that_disagrees_with_its_identifier_is_said(cli, write):
    message = oru(
        "PID|1||P-1^^^LAB^MR||Doe^Jo||19650312|M",
        "OBR|1|P1|F1|CBC|||202611020745",
        "OBX|1|NM|2132-9^B12^LN||180|pmol/L^pg/mL^UCUM|||||F",
    )
    result = cli("batch", write("units.hl7", message), "--as-of", "2026-11-20")
    assert result.exit_code == 0, result.stderr
    (row,) = csv_rows(result.stdout)
    assert row["b12_status"] == "borderline"
    assert "not 'pg/mL' from the unit text" in row["warnings"]


def test_a_preliminary_result_is_read_and_said_to_be_not_final(cli, write):
    fhir = ndjson(observation("777-3", 95, "10*9/L", status="preliminary"))
    result = cli("batch", write("prelim.ndjson", fhir), "--as-of", "2026-11-20")
    assert result.exit_code == 0, result.stderr
    (row,) = csv_rows(result.stdout)
    assert row["platelets_flag"] == "low"
    assert "not made this result final (FHIR status 'preliminary')" in row["warnings"]
    message = oru(
        "PID|1||P-1^^^LAB^MR||Doe^Jo||19650312|M",
        "OBR|1|P1|F1|CBC|||202611020745",
        "OBX|1|NM|777-3^PLT^LN||95|10*9/L|||||P",
        "OBX|2|NM|2132-9^B12^LN||300|pmol/L|||||F",
    )
    result = cli("batch", write("prelim.hl7", message), "--as-of", "2026-11-20")
    (row,) = csv_rows(result.stdout)
    assert "platelets (message 1, OBX 1): the laboratory has not made" in row["warnings"]
    assert "b12 (message 1" not in row["warnings"]  # a final result has no such note


def test_a_result_entered_in_error_beside_a_good_one_does_not_say_the_test_was_not_measured(
    cli, write
):
    def observation(code: str, status: str, value: float | None) -> dict:
        resource = {
            "resourceType": "Observation",
            "status": status,
            "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "effectiveDateTime": "2026-03-01",
        }
        if value is not None:
            resource["valueQuantity"] = {"value": value, "unit": "pg/mL"}
        return {"resource": resource}

    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            observation("2132-9", "entered-in-error", 120),  # B12, withdrawn
            observation("2132-9", "final", 500),  # B12, the result in force
            observation("2276-4", "cancelled", None),  # ferritin, never measured
        ],
    }
    path = write("withdrawn.json", json.dumps(bundle))
    result = cli("batch", path, "--format", "ndjson", "--as-of", "2026-11-20")
    record = json.loads(result.stdout)
    assert [m["input"] for m in record["measurements"]] == ["500 pg/mL"]
    assert record["warnings"] == [
        "b12 (entry 1): no result (entered in error); its other result is used",
        "ferritin (entry 3): no result (cancelled); ferritin not measured",
    ]


def test_a_correction_says_which_result_it_replaced(cli):
    result = cli("batch", ORU, "--format", "ndjson", "--as-of", "2026-11-20")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    corrected = next(r for r in records if r["lines"] == [15, 16])
    assert [m["input"] for m in corrected["measurements"] if m["analyte"] == "platelets"] == [
        "26 10*9/L"
    ]
    assert (
        "platelets (message 2, OBX 3): the laboratory's correction is used; it replaces "
        "message 2, OBX 1: 62 10*9/L"
    ) in corrected["warnings"]
    assert "777-3: correction used in 1 record" in result.stderr
