"""Input kinds told apart by content."""

from __future__ import annotations

import json

import pytest
from conftest import REPO

from b12lab.reading.sources.detect import FORMATS, detect_format

FIXTURES = REPO / "tests" / "fixtures"
EXAMPLES = REPO / "examples"
OBS = json.dumps({"resourceType": "Observation", "code": {"text": "B12"}})


@pytest.mark.parametrize(
    ("first_bytes", "expected"),
    [
        (b"PAR1\x15\x04", "parquet"),
        (b"ARROW1\x00\x00", "arrow"),
        (b"MSH|^~\\&|LIS|LAB", "hl7v2"),
        (b"\x0bMSH|^~\\&|LIS|LAB", "hl7v2"),
        (b"FHS|^~\\&|LIS", "hl7v2"),
        (b"BHS|^~\\&|LIS", "hl7v2"),
        (b"MSH#$%*@|LIS", "hl7v2"),
        (b"\r\nMSH|^~\\&|LIS|LAB", "hl7v2"),
        (OBS.encode(), "fhir-json"),
        (b'{\n  "resourceType": "Bundle",\n  "type": "collection",\n  "entry": [', "fhir-json"),
        (b'{"resourceType": "Bundle", "entry": [{"resource": {"resourceT', "fhir-json"),
        ((OBS + "\n" + OBS + "\n").encode(), "fhir-ndjson"),
        ((OBS + "\n" + OBS[:20]).encode(), "fhir-ndjson"),
        (b"\xef\xbb\xbf" + (OBS + "\n" + OBS).encode(), "fhir-ndjson"),
        (b'{"patient_id": "P1", "values": {"b12": 180}}', "json-panel"),
        (b'{\n  "patient_id": "P1",\n  "values": {"b12": 180}\n}', "json-panel"),
        (b'[{"b12": 180}]', "json-panel"),
        (b"patient_id,date,b12,platelets\nP1,2026-01-01,180,95\n", "csv"),
        (b"patient;date;b12\nP1;2026-01-01;180\n", "csv"),
        (b"patient\tdate\tb12\n", "csv"),
        (b"# panel\npatient_id: P1\nvalues: {b12: 180, platelets: 95}\n", "yaml"),
        (b"---\nb12: 180 pg/mL\n", "yaml"),
        (b"", "yaml"),
    ],
)
def test_detect_format_by_content(first_bytes, expected):
    assert detect_format(first_bytes) == expected
    assert expected in FORMATS


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (EXAMPLES / "fhir_bundle.json", "fhir-json"),
        (FIXTURES / "searchset.json", "fhir-json"),
        (EXAMPLES / "fhir_bulk.ndjson", "fhir-ndjson"),
        (EXAMPLES / "oru_r01.hl7", "hl7v2"),
        (FIXTURES / "oru_mllp.hl7", "hl7v2"),
        (FIXTURES / "oru_batch.hl7", "hl7v2"),
        (EXAMPLES / "panel.yaml", "yaml"),
        (EXAMPLES / "long_lis.csv", "csv"),
        (EXAMPLES / "wide_us.csv", "csv"),
    ],
)
def test_detect_format_of_the_samples(path, expected):
    data = path.read_bytes()
    assert detect_format(data[:4096]) == expected
    assert detect_format(data[:200]) == expected
