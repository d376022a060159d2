"""The record-count invariant for FHIR and HL7 sources: one record per panel and per problem."""

from __future__ import annotations

import datetime as dt
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from b12lab.messages import ObservationInterpreter, read_observations
from b12lab.reading.policy import PANEL_SPLIT

TODAY = dt.date(2026, 11, 20)
ANALYTE_CODES = ("2132-9", "777-3", "751-8", "2276-4")
OTHER_CODES = ("8867-4", "2951-2")

observations = st.fixed_dictionaries(
    {
        "patient": st.sampled_from("abc"),
        "day": st.sampled_from(["2026-09-01", "2026-10-01", "2026-11-01"]),
        "code": st.sampled_from(ANALYTE_CODES + OTHER_CODES),
        "value": st.integers(min_value=1, max_value=900),
    }
)
items = st.one_of(
    observations,
    st.sampled_from(["junk", "encounter"]),
)


def as_line(item) -> str:
    if item == "junk":
        return '{"resourceType": "Observation", '  # cut off: not JSON
    if item == "encounter":
        return json.dumps({"resourceType": "Encounter", "id": "e"})
    return json.dumps(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": item["code"]}]},
            "subject": {"reference": f"Patient/{item['patient']}"},
            "effectiveDateTime": item["day"],
            "valueQuantity": {"value": item["value"]},
        }
    )


def records_of(lines: list[str], ranges, **options):
    data = "".join(line + "\n" for line in lines).encode()
    source = read_observations(data, "fhir-ndjson", "test")
    interpreter = ObservationInterpreter.for_messages(ranges, today=TODAY, **options)
    return list(interpreter(source)), source, interpreter


@settings(max_examples=150, deadline=None)
@given(st.lists(items, max_size=40))
def test_records_are_the_panels_with_an_analyte_plus_the_unreadable_lines_in_order(ranges, sample):
    records, source, _ = records_of([as_line(i) for i in sample], ranges)
    expected = []  # first line of each panel and of each unreadable line
    seen = set()
    for line, item in enumerate(sample, start=1):
        if item == "junk":
            expected.append(line)
        elif isinstance(item, dict) and item["code"] in ANALYTE_CODES:
            key = (item["patient"], item["day"])
            if key not in seen:
                seen.add(key)
                first = next(
                    n
                    for n, other in enumerate(sample, start=1)
                    if isinstance(other, dict) and (other["patient"], other["day"]) == key
                )
                expected.append(first)
    assert sorted(r.first_line for r in records) == sorted(expected)
    assert [r.first_line for r in records] == sorted(r.first_line for r in records)
    assert source.skipped.get("Encounter", 0) == sample.count("encounter")
    junk = {line for line, item in enumerate(sample, start=1) if item == "junk"}
    assert {r.first_line for r in records if r.errors and r.first_line in junk} == junk


def test_a_panel_whose_results_arrive_beyond_the_window_is_split_and_noted(ranges):
    lines = [
        as_line({"patient": p, "day": "2026-11-01", "code": "2132-9", "value": 300}) for p in "abca"
    ]
    records, _, _ = records_of(lines, ranges, window=2)
    assert [r.patient_id for r in records] == ["a", "b", "c", "a"]
    assert [n.kind for n in records[3].notes].count(PANEL_SPLIT) == 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["P1", "P2"]), st.sampled_from(["ok", "cut"])),
        min_size=1,
        max_size=8,
    )
)
def test_each_hl7_message_is_a_panel_or_a_problem(ranges, messages):
    text = ""
    for number, (patient, shape) in enumerate(messages, start=1):
        text += f"MSH|^~\\&|LIS|LAB|EHR|W|20261102||ORU^R01|M{number}|P|2.5.1\r"
        text += f"PID|1||{patient}||X^Y||19700101|F\r"
        text += f"OBR|1||ACC-{number}|B12|||2026110{1 + number % 3}\r"
        if shape == "ok":
            text += f"OBX|1|NM|2132-9^B12^LN||{100 + number}|pmol/L|148-664||||F\r"
    source = read_observations(text.encode(), "hl7v2", "test")
    records = list(ObservationInterpreter.for_messages(ranges, today=TODAY)(source))
    assert len(records) == len(messages)
    assert [bool(r.errors) for r in records] == [shape == "cut" for _, shape in messages]
