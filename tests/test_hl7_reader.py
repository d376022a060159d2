"""HL7 v2 ORU^R01 input: every field read, envelopes and separators, hostile messages."""

from __future__ import annotations

import pytest
from conftest import REPO

from b12lab.errors import InputError
from b12lab.reading.observation import Observation, SourceProblem
from b12lab.reading.sources.hl7 import read_hl7

FIXTURES = REPO / "tests" / "fixtures"
MSH = "MSH|^~\\&|LIS|LAB|EHR|WARD|20261102||ORU^R01|M1|P|2.5.1"
PID = "PID|1||P-1^^^LAB^MR~X-9^^^NHS||Doe^Jo||19650312|M"
OBR = "OBR|1|PLACER-1|FILLER-1|CBC^Blood count^L|||202611020745"


def read(*segments, separator="\r"):
    return list(read_hl7(separator.join(segments) + separator))


def observations(items):
    return [item for item in items if isinstance(item, Observation)]


@pytest.fixture(scope="module")
def sample():
    return list(read_hl7((FIXTURES / "oru_r01.hl7").read_bytes(), "oru_r01.hl7"))


@pytest.mark.parametrize(
    ("where", "field", "expected"),
    [
        ("message 1, OBX 1", "patient_id", "H-55012"),
        ("message 1, OBX 1", "birth_date", "1972-05-14"),
        ("message 1, OBX 1", "sex", "F"),
        ("message 1, OBX 1", "collected", "2026-11-02T08:30+01:00"),
        ("message 1, OBX 1", "group", "FL-20261102-0042"),
        ("message 1, OBX 1", "code", "2132-9"),
        ("message 1, OBX 1", "code_system", "LN"),
        ("message 1, OBX 1", "value", "180"),
        ("message 1, OBX 1", "unit", "pg/mL"),
        ("message 1, OBX 1", "lab_reference", "200-900"),
        ("message 1, OBX 1", "lab_flag", "L"),
        ("message 1, OBX 2", "unit", "10*9/L"),
        ("message 1, OBX 4", "lab_flag", "H"),
        ("message 2, OBX 2", "patient_id", "H-55013"),
        ("message 2, OBX 2", "collected", "2026-11-03T07:45:00"),
        ("message 2, OBX 3", "value", "26"),
        ("message 2, OBX 3", "lab_flag", "LL"),
        ("message 2, OBX 4", "value", "<50"),
        ("message 2, OBX 4", "group", "FL-20261103-0008"),
        ("message 2, OBX 5", "value", "3.0"),
        ("message 2, OBX 5", "comparator", "<"),
        ("message 2, OBX 5", "lab_reference", ">6.8"),
        ("message 2, OBX 6", "value", None),
        ("message 2, OBX 6", "absent_reason", "cancelled (OBX-11 X: result cannot be obtained)"),
    ],
)
def test_sample_oru_fields(sample, where, field, expected):
    item = next(i for i in sample if i.where == where)
    assert getattr(item, field) == expected


def test_corrected_result_replaces_the_preliminary_one(sample):
    platelets = [i for i in sample if i.code == "777-3" and i.patient_id == "H-55013"]
    assert [(p.value, p.where) for p in platelets] == [("26", "message 2, OBX 3")]
    assert platelets[0].replaces == ("message 2, OBX 1: 62 10*9/L",)  # said in its record


def test_a_correction_replaces_only_the_result_of_its_own_order():
    items = read(
        MSH,
        "PID|1||PAT-A^^^LAB^MR||A^A||19700101|F",
        "OBR|1|P1|F1|CBC|||202610010800",
        "OBX|1|NM|777-3^Platelets^LN||15|10*9/L|150-450|LL|||F",
        "PID|2||PAT-B^^^LAB^MR||B^B||19800101|M",
        "OBR|1|P2|F2|CBC|||202610020800",
        "OBX|1|NM|777-3^Platelets^LN||310|10*9/L|150-450||||F",
        "OBX|2|NM|777-3^Platelets^LN||300|10*9/L|150-450||||C",
    )
    kept = [(i.patient_id, i.value) for i in observations(items)]
    assert kept == [("PAT-A", "15"), ("PAT-B", "300")]  # PAT-A's critical 15 is not lost


def test_sample_record_count(sample):
    assert len(sample) == 10
    assert all(isinstance(item, Observation) for item in sample)


@pytest.mark.parametrize("name", ["oru_mllp.hl7", "oru_batch.hl7"])
def test_mllp_frames_and_batch_envelopes_hold_two_messages(name):
    found = list(read_hl7((FIXTURES / name).read_bytes()))
    assert len(found) == 6
    assert {i.patient_id for i in found} == {"H-55012", "S-9001"}
    local = next(i for i in found if i.patient_id == "S-9001")
    assert (local.code, local.code_system, local.value, local.unit) == (
        "FERR",
        "99SLAB",
        "12",
        "ng/mL",
    )


@pytest.mark.parametrize("separator", ["\r", "\n", "\r\n"])
def test_segment_separators(separator):
    found = read(
        MSH, PID, OBR, "OBX|1|NM|777-3^PLT^LN||95|10*9/L|150-450|L|||F", separator=separator
    )
    assert [(i.code, i.value, i.patient_id) for i in found] == [("777-3", "95", "P-1")]


def test_encoding_characters_come_from_msh():
    found = read(
        "MSH#*@\\$#LIS#LAB#EHR#WARD#20261102##ORU*R01#M1#P#2.4",
        "PID#1##P-7*** LAB@X-1###19650312#F",
        "OBR#1#A#B#CBC#\\##202611020745",
        "OBX#1#SN#2132-9*B12*LN##<*50#pmol/L#148-664#L###F",
    )
    assert len(found) == 1
    item = found[0]
    assert (item.patient_id, item.code, item.comparator, item.value) == ("P-7", "2132-9", "<", "50")


@pytest.mark.parametrize(
    ("obx", "field", "expected"),
    [
        ("OBX|1|NM|777-3^PLT^LN||95|10*9/L|150-450|L|||F", "value", "95"),
        ("OBX|1|ST|777-3^PLT^LN||>1000|10*9/L||HH|||F", "value", ">1000"),
        ("OBX|1|SN|777-3^PLT^LN||>=^1000|10*9/L||HH|||F", "comparator", ">="),
        ("OBX|1|SN|777-3^PLT^LN||^95|10*9/L||N|||F", "comparator", None),
        ("OBX|1|SN|777-3^PLT^LN||^1^:^40|||||F", "value", "1:40"),
        ("OBX|1|NM|777-3^PLT^LN||95|^x10E9/L|||||F", "unit", "x10E9/L"),
        ("OBX|1|NM|777-3^PLT^LN||95||||||F", "unit", None),
        ("OBX|1|NM|PLT^Platelets^99LAB^777-3^Platelets^LN||95||||||F", "code", "777-3"),
        ("OBX|1|NM|^Platelet count||95||||||F", "code", "Platelet count"),
        ("OBX|1|NM|777-3^PLT^LN||95|||~L~A|||F", "lab_flag", "L"),
        ("OBX|1|CWE|2132-9^B12^LN||POS^Positive^L|||||F", "value", "Positive"),
        ("OBX|1|NM|777-3^PLT^LN||95||||||D", "absent_reason", "deleted (OBX-11 D)"),
        ("OBX|1|NM|777-3^PLT^LN||95||||||W", "value", None),
        ("OBX|1|NM|777-3^PLT^LN||95||||||P", "absent_reason", None),
        ("OBX|1|NM|777-3^PLT^LN||95||||||F|||20261101093000", "collected", "2026-11-02T07:45"),
    ],
)
def test_obx_variants(obx, field, expected):
    found = read(MSH, PID, OBR, obx)
    assert len(found) == 1
    assert getattr(found[0], field) == expected


def test_obx14_is_the_collection_time_when_obr7_is_empty():
    found = read(MSH, PID, "OBR|1||F-2|CBC", "OBX|1|NM|777-3^PLT^LN||95||||||F|||20261101093000")
    assert found[0].collected == "2026-11-01T09:30:00"


def test_placer_number_is_the_group_when_there_is_no_filler_number():
    found = read(MSH, PID, "OBR|1|PLACER-9||CBC", "OBX|1|NM|777-3^PLT^LN||95||||||F")
    assert found[0].group == "PLACER-9"


@pytest.mark.parametrize("version", ["2.3", "2.3.1", "2.4", "2.5", "2.5.1"])
def test_versions_2_3_to_2_5_1(version):
    msh = f"MSH|^~\\&|LIS|LAB|EHR|WARD|20261102||ORU^R01|M1|P|{version}"
    assert len(read(msh, PID, OBR, "OBX|1|NM|777-3^PLT^LN||95||||||F")) == 1


GOOD = [MSH, PID, OBR, "OBX|1|NM|777-3^PLT^LN||95||||||F"]


@pytest.mark.parametrize(
    ("bad_message", "reason"),
    [
        (["MSH|^~"], "MSH segment is truncated"),
        (["MSH|^~\\&|LIS|LAB|EHR|WARD|20261102||ORU^R01|M1|P|2.5", PID, OBR], "no OBX"),
        (["MSH||LIS|LAB|EHR|WARD|20261102||ORU^R01|M1|P|2.5", *GOOD[1:]], "MSH-2"),
        (["MSH|^^\\&|LIS|LAB|EHR|WARD|20261102||ORU^R01|M1|P|2.5", *GOOD[1:]], "MSH-2"),
        (["MSHa^~\\&aLISaLAB", *GOOD[1:]], "MSH-1"),
        ([*GOOD[:3], "OBX|1|NM|777-3^PLT^LN||95", "\x01\x02garbage"], "not an HL7 segment"),
        ([*GOOD[:3], "OBX|1|NM"], "OBX-3 has no code"),
        ([*GOOD[:3], "OBX|1|NM|777-3^PLT^LN"], "stops before OBX-5"),
    ],
)
def test_a_malformed_message_is_a_problem_and_the_next_message_is_read(bad_message, reason):
    found = read(*GOOD, *bad_message, *GOOD)
    problems = [i for i in found if isinstance(i, SourceProblem)]
    assert len(problems) == 1
    assert problems[0].where.startswith("message 2")
    assert reason in problems[0].reason
    assert [i.where for i in observations(found)] == ["message 1, OBX 1", "message 3, OBX 1"]


def test_other_message_types_are_skipped_and_counted():
    adt = "MSH|^~\\&|ADT|H|EHR|W|20261102||ADT^A08|M9|P|2.5"
    source = read_hl7("\r".join([adt, PID, *GOOD, adt, PID]) + "\r")
    assert len(list(source)) == 1
    assert dict(source.skipped) == {"ADT^A08": 2}


def test_text_before_the_first_msh_is_one_problem():
    found = read("garbage line", *GOOD)
    assert [type(i).__name__ for i in found] == ["Observation", "SourceProblem"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x01\x02MSH|", "binary"),
        (b"patient,b12\nP1,180\n", "no MSH segment"),
        (b"", "no MSH segment"),
    ],
)
def test_a_file_with_no_hl7_is_one_input_error(data, message):
    with pytest.raises(InputError, match=message):
        read_hl7(data, "upload.hl7")


def test_latin1_text_is_read():
    data = "\r".join([MSH, "PID|1||P-1||Müller^Jörg||19650312|M", OBR, GOOD[3]]).encode("latin-1")
    found = list(read_hl7(data))
    assert found[0].patient_id == "P-1"


@pytest.mark.parametrize(
    "obx",
    [
        "OBX|1|NM|2276-4^Ferritin^LN||1,5|ug/L|||||F",
        "OBX|1|NM|2276-4^Ferritin^LN||1,500|ug/L|||||F",
        "OBX|1|SN|2276-4^Ferritin^LN||<^1,5|ug/L|||||F",
    ],
)
def test_a_comma_in_an_hl7_number_is_a_problem_not_a_decimal_mark(obx):
    found = read(MSH, PID, OBR, obx, "OBX|2|NM|777-3^PLT^LN||95||||||F")
    assert [type(i).__name__ for i in found] == ["SourceProblem", "Observation"]
    problem = found[0]
    assert (problem.where, problem.patient_id) == ("message 1, OBX 1", "P-1")
    assert problem.reason.startswith("message 1, OBX 1 (2276-4): OBX-5 '1,5")
    assert "is not an HL7 number" in problem.reason
    assert "decimal point" in problem.reason


@pytest.mark.parametrize(
    ("obx", "value"),
    [
        ("OBX|1|NM|2276-4^Ferritin^LN||1.5|ug/L|||||F", "1.5"),
        ("OBX|1|SN|2276-4^Ferritin^LN||<^1.5|ug/L|||||F", "1.5"),
        ("OBX|1|ST|2276-4^Ferritin^LN||1,5|ug/L|||||F", "1,5"),  # text: the reading layer's job
        ("OBX|1|NM|2276-4^Ferritin^LN||1,5|ug/L|||||X", None),  # cancelled: no value either way
    ],
)
def test_a_decimal_point_in_an_hl7_number_is_read(obx, value):
    (item,) = read(MSH, PID, OBR, obx)
    assert isinstance(item, Observation)
    assert item.value == value


def test_a_correction_that_cannot_be_read_still_replaces_the_result_it_corrects():
    found = read(
        MSH,
        PID,
        OBR,
        "OBX|1|NM|2276-4^Ferritin^LN||12|ug/L|||||F",
        "OBX|2|NM|2276-4^Ferritin^LN||1,5|ug/L|||||C",
    )
    assert [(type(i).__name__, i.where) for i in found] == [("SourceProblem", "message 1, OBX 2")]
