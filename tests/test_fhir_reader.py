"""FHIR R4 input: every field an Observation carries, and hostile resources."""

from __future__ import annotations

import io
import json

import pytest
from conftest import REPO

from b12lab.errors import InputError
from b12lab.reading.observation import Observation, SourceProblem
from b12lab.reading.sources.fhir import (
    MAX_LINE_BYTES,
    read_fhir,
    read_fhir_json,
    read_fhir_ndjson,
)

FIXTURES = REPO / "tests" / "fixtures"
LOINC = "http://loinc.org"


def records(path):
    with open(path, "rb") as stream:
        source = read_fhir(stream, path.name)
        return list(source), source.skipped


def by_code(items):
    return {item.code: item for item in items if isinstance(item, Observation)}


def observation(**fields):
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "777-3"}]},
        "valueQuantity": {"value": 95, "unit": "10^9/L", "code": "10*9/L"},
    }
    resource.update(fields)
    return resource


def one(resource):
    found = list(read_fhir_json(json.dumps(resource)))
    assert len(found) == 1
    return found[0]


# --- the sample collection Bundle --------------------------------------------------


@pytest.fixture(scope="module")
def bundle():
    return records(FIXTURES / "fhir_bundle.json")


@pytest.mark.parametrize(
    ("code", "field", "expected"),
    [
        ("2132-9", "value", 180),
        ("2132-9", "unit", "pg/mL"),
        ("2132-9", "code_system", LOINC),
        ("2132-9", "lab_reference", "200-900 pg/mL"),
        ("2132-9", "lab_flag", "L"),
        ("777-3", "unit", "10*9/L"),
        ("777-3", "lab_reference", "150-450 10*9/L"),
        ("751-8", "value", 1.1),
        ("2276-4", "lab_flag", "H"),
        ("1988-5", "comparator", "<"),
        ("1988-5", "value", 3),
        ("1988-5", "lab_reference", "<=5 mg/L"),
        ("777-3", "patient_id", "MRN-40211"),
        ("777-3", "sex", "female"),
        ("777-3", "birth_date", "1972-05-14"),
        ("777-3", "collected", "2026-11-02T08:30:00+01:00"),
        ("777-3", "group", "rpt-1"),
        ("777-3", "absent_reason", None),
    ],
)
def test_collection_bundle_fields(bundle, code, field, expected):
    assert getattr(by_code(bundle[0])[code], field) == expected


def test_collection_bundle_reads_every_observation_and_counts_the_specimen(bundle):
    found, skipped = bundle
    assert len(found) == 7
    assert all(isinstance(item, Observation) for item in found)
    assert [item.line for item in found] == sorted(item.line for item in found)
    assert dict(skipped) == {"Specimen": 1}


def test_searchset_resolves_included_patient_and_counts_operation_outcome():
    found, skipped = records(FIXTURES / "searchset.json")
    codes = by_code(found)
    assert codes["2132-9"].patient_id == "S-0077"
    assert codes["2132-9"].sex == "male"
    assert codes["2276-4"].patient_id == "p-78"  # no Patient in the Bundle: the reference id
    assert codes["2276-4"].sex is None
    assert dict(skipped) == {"OperationOutcome": 1}


@pytest.mark.parametrize("bundle_type", ["collection", "searchset", "transaction", "batch"])
def test_every_bundle_type_is_read(bundle_type):
    document = {
        "resourceType": "Bundle",
        "type": bundle_type,
        "entry": [{"resource": observation(), "request": {"method": "POST", "url": "Observation"}}],
    }
    found = list(read_fhir_json(json.dumps(document)))
    assert [item.code for item in found] == ["777-3"]


# --- bulk NDJSON -------------------------------------------------------------------


@pytest.fixture(scope="module")
def bulk():
    return records(FIXTURES / "fhir_bulk.ndjson")


def test_bulk_ndjson_records_and_skipped_types(bulk):
    found, skipped = bulk
    assert len(found) == 7
    assert dict(skipped) == {"Encounter": 1}
    assert found[0].where == "line 3"


@pytest.mark.parametrize(
    ("line", "field", "expected"),
    [
        (3, "patient_id", "BULK-001"),
        (3, "birth_date", "1948-07-30"),
        (6, "absent_reason", "data absent: error"),
        (6, "value", None),
        (8, "absent_reason", "entered in error"),
        (8, "value", None),
        (9, "comparator", ">"),
        (9, "value", 1650),
        (9, "sex", "male"),
    ],
)
def test_bulk_ndjson_fields(bulk, line, field, expected):
    item = next(i for i in bulk[0] if i.line == line)
    assert getattr(item, field) == expected


def test_ndjson_from_a_pipe_resolves_patients_seen_earlier():
    data = (FIXTURES / "fhir_bulk.ndjson").read_bytes()

    class Pipe(io.BytesIO):
        def seekable(self):
            return False

    found = list(read_fhir_ndjson(Pipe(data)))
    assert by_code(found)["2132-9"].patient_id in ("BULK-001", "BULK-002")
    assert all(item.sex for item in found)


def test_ndjson_patient_after_its_observations_is_found_by_the_first_pass():
    lines = [
        json.dumps(observation(subject={"reference": "Patient/late"})),
        json.dumps({"resourceType": "Patient", "id": "late", "gender": "male"}),
    ]
    found = list(read_fhir_ndjson(io.BytesIO("\n".join(lines).encode())))
    assert found[0].patient_id == "late"
    assert found[0].sex == "male"


def test_ndjson_bad_lines_are_problems_with_their_line_number_and_the_rest_is_read():
    lines = [
        json.dumps(observation()),
        "{not json",
        "[1, 2]",
        json.dumps({"status": "final"}),
        json.dumps(observation(code={"text": ""})),
        "",
        json.dumps(observation()),
    ]
    found = list(read_fhir_ndjson(io.BytesIO("\n".join(lines).encode())))
    problems = [(i.line, type(i).__name__) for i in found]
    assert problems == [
        (1, "Observation"),
        (2, "SourceProblem"),
        (3, "SourceProblem"),
        (4, "SourceProblem"),
        (5, "SourceProblem"),
        (7, "Observation"),
    ]
    assert "not valid JSON" in found[1].reason
    assert "no resourceType" in found[3].reason
    assert "no code" in found[4].reason


def test_ndjson_line_over_the_bound_is_a_problem_not_a_memory_spike():
    huge = b'{"resourceType": "Observation", "note": "' + b"x" * (MAX_LINE_BYTES + 10) + b'"}'
    data = (
        json.dumps(observation()).encode()
        + b"\n"
        + huge
        + b"\n"
        + json.dumps(observation()).encode()
    )
    found = list(read_fhir_ndjson(io.BytesIO(data)))
    assert [type(i).__name__ for i in found] == ["Observation", "SourceProblem", "Observation"]
    assert found[1].line == 2
    assert "longer than 8 MiB" in found[1].reason


def test_ndjson_of_binary_junk_is_one_input_error():
    with pytest.raises(InputError, match="not a FHIR NDJSON text file"):
        list(read_fhir_ndjson(io.BytesIO(b"\x00\x01\x02{\n\x00")))


# --- single resources and field variants --------------------------------------------


@pytest.mark.parametrize(
    ("fields", "attribute", "expected"),
    [
        ({"valueQuantity": {"value": 95, "unit": "K/uL"}}, "unit", "K/uL"),
        ({"valueQuantity": {"value": 95}}, "unit", None),
        ({"valueQuantity": {"value": "95.0"}}, "value", "95.0"),
        ({"valueString": "<50", "valueQuantity": None}, "value", "<50"),
        (
            {"valueQuantity": {"value": 40, "comparator": "<=", "code": "pmol/L"}},
            "comparator",
            "<=",
        ),
        (
            {"effectivePeriod": {"start": "2026-10-01T08:00:00Z"}},
            "collected",
            "2026-10-01T08:00:00Z",
        ),
        ({"issued": "2026-10-03T11:00:00Z"}, "collected", "2026-10-03T11:00:00Z"),
        (
            {"effectiveDateTime": "2026-10-01", "issued": "2026-10-03T11:00:00Z"},
            "collected",
            "2026-10-01",
        ),
        ({"referenceRange": [{"text": "150 to 450"}]}, "lab_reference", "150 to 450"),
        ({"referenceRange": [{"low": {"value": 150}}]}, "lab_reference", ">=150"),
        ({"interpretation": [{"coding": [{"code": "HH"}]}]}, "lab_flag", "HH"),
        ({"interpretation": [{"text": "Abnormal"}]}, "lab_flag", "Abnormal"),
        ({"status": "cancelled"}, "absent_reason", "cancelled"),
        ({"status": "entered-in-error"}, "value", None),
        ({"status": "preliminary"}, "value", 95),
        ({"status": "amended"}, "absent_reason", None),
        ({"status": "corrected"}, "value", 95),
        (
            {"dataAbsentReason": {"text": "Sample clotted"}, "valueQuantity": None},
            "absent_reason",
            "data absent: Sample clotted",
        ),
        ({"subject": {"reference": "Patient/123"}}, "patient_id", "123"),
        (
            {"subject": {"reference": "https://ehr.example/fhir/Patient/9/_history/2"}},
            "patient_id",
            "9",
        ),
        ({"subject": {"identifier": {"value": "MRN-1"}}}, "patient_id", "MRN-1"),
        ({"subject": None}, "patient_id", None),
    ],
)
def test_single_observation_field(fields, attribute, expected):
    resource = {key: value for key, value in observation(**fields).items() if value is not None}
    assert getattr(one(resource), attribute) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (
            {
                "coding": [
                    {"system": "http://lab.example/codes", "code": "PLT"},
                    {"system": LOINC, "code": "777-3"},
                ]
            },
            ("777-3", LOINC),
        ),
        (
            {"coding": [{"system": "http://lab.example/codes", "code": "PLT"}]},
            ("PLT", "http://lab.example/codes"),
        ),
        ({"text": "Platelet count"}, ("Platelet count", None)),
    ],
)
def test_code_prefers_loinc_and_keeps_local_codings(code, expected):
    item = one(observation(code=code))
    assert (item.code, item.code_system) == expected


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("not an object", "entry is not a JSON object"),
        ({"fullUrl": "urn:uuid:1"}, "entry has no resource"),
        ({"resource": []}, "resource is not a JSON object"),
        ({"resource": {"id": "x"}}, "resource has no resourceType"),
        ({"resource": {"resourceType": "Observation", "status": "final"}}, "no code"),
    ],
)
def test_malformed_bundle_entry_is_a_problem_and_the_next_is_read(entry, reason):
    document = {"resourceType": "Bundle", "type": "collection"}
    document["entry"] = [entry, {"resource": observation()}]
    found = list(read_fhir_json(json.dumps(document)))
    assert isinstance(found[0], SourceProblem)
    assert found[0].where == "entry 1"
    assert reason in found[0].reason
    assert isinstance(found[1], Observation)


def test_unknown_resource_types_are_counted_per_type():
    document = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Practitioner"}},
            {"resource": {"resourceType": "Practitioner"}},
            {"resource": {"resourceType": "Medication"}},
            {"resource": {"resourceType": "Bundle", "type": "collection"}},
            {"resource": observation()},
        ],
    }
    source = read_fhir_json(json.dumps(document))
    assert len(list(source)) == 1
    assert dict(source.skipped) == {"Practitioner": 2, "Medication": 1, "Bundle": 1}


def test_a_huge_bundle_is_read_entry_by_entry():
    count = 20_000
    document = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": observation(id=f"o{i}")} for i in range(count)],
    }
    source = read_fhir_json(json.dumps(document).encode())
    produced = 0
    for item in source:
        assert isinstance(item, Observation)
        produced += 1
    assert produced == count


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"resourceType": "Bundle", ', "not valid JSON"),
        (b"[1, 2, 3]", "not a FHIR resource"),
        (b'{"b12": 180}', "not a FHIR resource"),
    ],
)
def test_a_whole_file_that_is_not_fhir_json_is_one_input_error(data, message):
    with pytest.raises(InputError, match=message):
        read_fhir_json(data, "upload.json")


def test_bundle_with_no_entries_yields_nothing():
    assert list(read_fhir_json('{"resourceType": "Bundle", "type": "searchset"}')) == []


# --- values that are there but cannot be read ------------------------------------------


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"valueQuantity": {"value": True, "code": "pg/mL"}}, "value is true, not a number"),
        ({"valueQuantity": {"value": [1], "code": "pg/mL"}}, "value is a list, not a number"),
        ({"valueQuantity": {"value": {"a": 1}}}, "value is an object, not a number"),
        ({"valueQuantity": "oops"}, "valueQuantity is the text 'oops'"),
        ({"valueQuantity": {"value": 95, "comparator": ["<"]}}, "comparator is a list"),
        ({"valueQuantity": {"value": 95, "code": {"x": 1}}}, "valueQuantity.code is an object"),
        ({"valueQuantity": None, "valueString": ["<50"]}, "valueString is a list"),
        ({"valueQuantity": None, "valueCodeableConcept": "POS"}, "valueCodeableConcept is"),
    ],
)
def test_a_value_that_cannot_be_read_is_a_problem_naming_the_resource(fields, reason):
    resource = observation(id="obs-9", subject={"reference": "Patient/p1"}, **fields)
    resource = {key: value for key, value in resource.items() if value is not None}
    data = (json.dumps(resource) + "\n" + json.dumps(observation()) + "\n").encode()
    found = list(read_fhir_ndjson(io.BytesIO(data)))
    assert [type(i).__name__ for i in found] == ["SourceProblem", "Observation"]
    problem = found[0]
    assert (problem.where, problem.line, problem.patient_id) == ("line 1", 1, "p1")
    assert problem.reason.startswith("Observation 'obs-9' (777-3): ")
    assert reason in problem.reason
    assert "; send " in problem.reason  # the fix
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": resource}]}
    (in_bundle,) = read_fhir_json(json.dumps(bundle))
    assert isinstance(in_bundle, SourceProblem) and in_bundle.where == "entry 1"


def test_a_malformed_value_of_a_result_that_is_absent_anyway_is_not_a_problem():
    resource = observation(status="cancelled", valueQuantity={"value": [1]})
    item = one(resource)
    assert isinstance(item, Observation)
    assert (item.value, item.absent_reason) == (None, "cancelled")


def test_a_value_of_null_is_no_value_not_a_problem():
    item = one(observation(valueQuantity={"value": None, "code": "pg/mL"}))
    assert isinstance(item, Observation)
    assert (item.value, item.unit) == (None, "pg/mL")


def test_a_reference_range_bound_that_is_not_a_finite_number_is_left_out():
    text = (
        json.dumps(observation(referenceRange=[{"low": {"value": 150}, "high": {"value": 0}}]))
        .replace('"low": {"value": 150}', '"low": {"value": ' + "9" * 400 + "}")
        .replace('"high": {"value": 0}', '"high": {"value": 1e999}')
    )
    (item,) = read_fhir_json(text)
    assert item.lab_reference is None
    text = json.dumps(
        observation(referenceRange=[{"low": {"value": 150}, "high": {"value": 0}}])
    ).replace('"high": {"value": 0}', '"high": {"value": 1e400}')
    (item,) = read_fhir_json(text)
    assert item.lab_reference == ">=150"


def test_ndjson_from_a_pipe_resolves_a_patient_given_after_its_observations():
    lines = [
        json.dumps(observation(subject={"reference": "Patient/p1"})),
        json.dumps(
            {
                "resourceType": "Patient",
                "id": "p1",
                "identifier": [{"value": "MRN-7"}],
                "gender": "male",
                "birthDate": "1970-01-01",
            }
        ),
    ]

    class Pipe(io.BytesIO):
        def seekable(self):
            return False

    (item,) = read_fhir_ndjson(Pipe("\n".join(lines).encode()))
    assert (item.patient_id, item.sex, item.birth_date) == ("MRN-7", "male", "1970-01-01")


@pytest.mark.parametrize("line", ['"not a resource"', '"line is not valid JSON"', "null", "42"])
def test_an_ndjson_line_of_another_json_type_is_not_a_json_object(line):
    data = f"{line}\n{json.dumps(observation())}\n".encode()
    found = list(read_fhir_ndjson(io.BytesIO(data)))
    assert [type(i).__name__ for i in found] == ["SourceProblem", "Observation"]
    assert found[0].reason == "resource is not a JSON object"
