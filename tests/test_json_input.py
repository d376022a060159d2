"""JSON read as carefully as YAML: one bounded reader for panel files, FHIR JSON and NDJSON."""

from __future__ import annotations

import csv
import io
import json

import pytest
from conftest import one_clear_line
from hypothesis import given
from hypothesis import strategies as st

from b12lab.inputs import json_text
from b12lab.reading.sources import fhir

DEEP = 100_000  # far past Python's recursion limit


def observation(code="2132-9", value=300, unit="pg/mL", patient="p1", **extra):
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": "2026-11-02",
        "valueQuantity": {"value": value, "code": unit},
    }
    resource.update(extra)
    return resource


def bundle_text(*resources) -> str:
    entries = [{"resource": resource} for resource in resources]
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries})


def rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def write(tmp_path):
    def write(name: str, text: str):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


# --- nesting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"resourceType": "Bundle", "entry": ' + "[" * DEEP + "]" * DEEP + "}",
        '{"resourceType": "Observation", "note": ' + '{"a":' * DEEP + "1" + "}" * DEEP + "}",
        '{"resourceType": "Bundle", "entry": ' + "[" * DEEP,  # never closed
    ],
    ids=["arrays", "objects", "unclosed"],
)
@pytest.mark.parametrize("command", ["interpret", "batch", "plan"])
def test_deeply_nested_fhir_json_is_exit_2_naming_the_limit(cli, write, text, command):
    path = write("deep.json", text)
    args = {"interpret": ("interpret", path), "batch": ("batch", path)}
    result = cli(*args.get(command, ("batch", path, "--plan")))
    assert result.exit_code == 2
    line = one_clear_line(result)
    assert f"nested more than {json_text.MAX_DEPTH} levels deep" in line


@pytest.mark.parametrize(
    "text", ["[" * DEEP + "]" * DEEP, '{"b12": ' + '{"a":' * DEEP + "1" + "}" * DEEP + "}"]
)
def test_a_deeply_nested_json_panel_file_is_exit_2(cli, write, text):
    result = cli("interpret", write("deep.json", text))
    assert result.exit_code == 2
    assert "nested more than 64 levels deep" in one_clear_line(result)


def test_a_deep_ndjson_line_is_that_records_error_and_the_run_goes_on(cli, write):
    deep = '{"resourceType": "Observation", "x": ' + "[" * DEEP + "]" * DEEP + "}"
    path = write(
        "bulk.ndjson",
        json.dumps(observation())
        + "\n"
        + deep
        + "\n"
        + json.dumps(observation("777-3", 95, "10*9/L"))
        + "\n",
    )
    result = cli("batch", path, "--as-of", "2026-11-20")
    assert result.exit_code == 3, result.stderr
    found = rows(result.stdout)
    assert [(r["line"], bool(r["error"])) for r in found] == [("1", False), ("2", True)]
    assert "nested more than 64 levels deep" in found[1]["error"]
    assert found[0]["b12_status"] == "normal" and found[0]["platelets_flag"] == "low"


def test_nesting_is_counted_outside_strings_only():
    assert json_text.nesting_depth(b'{"a": "[[[[{{{{", "b": ["\\"]"]}') == 2
    assert json_text.nesting_depth(b'"unterminated [[[[') == 0
    text = '{"resourceType": "Observation", "note": [{"text": "' + "[" * 500 + '"}]}'
    assert json_text.parse_json(text, limit=1 << 20)["note"][0]["text"] == "[" * 500


# --- duplicate keys, NaN and Infinity ---------------------------------------------------


def test_a_duplicate_json_key_is_refused_naming_the_key(cli, write):
    resource = json.dumps(observation()).replace(
        '"code": "pg/mL"}', '"code": "pmol/L", "value": 900}'
    )
    assert '"value": 300, "code": "pmol/L", "value": 900' in resource
    bundle = write(
        "dup.json", '{"resourceType": "Bundle", "entry": [{"resource": ' + resource + "}]}"
    )
    for command in (("interpret", bundle), ("batch", bundle)):
        result = cli(*command)
        assert result.exit_code == 2
        line = one_clear_line(result)
        assert "the key 'value' is given twice in one object" in line
        assert "keep one of them" in line
    bulk = write(
        "dup.ndjson", resource + "\n" + json.dumps(observation("777-3", 95, "10*9/L")) + "\n"
    )
    result = cli("batch", bulk, "--as-of", "2026-11-20")
    assert result.exit_code == 3
    found = rows(result.stdout)
    assert "the key 'value' is given twice" in found[0]["error"]
    assert [r["line"] for r in found] == ["1", "2"]
    panel = write("dup_panel.json", '{"patient_id": "P1", "b12": "180 pg/mL", "b12": "900 pg/mL"}')
    result = cli("interpret", panel)
    assert result.exit_code == 2
    assert "the key 'b12' is given twice" in one_clear_line(result)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_tokens_are_refused(cli, write, token):
    resource = json.dumps(observation(value=0)).replace('"value": 0', f'"value": {token}')
    result = cli(
        "interpret", write("nan.json", bundle_text()[:-2] + '[{"resource": ' + resource + "}]}")
    )
    assert result.exit_code == 2
    assert f"{token.lstrip('-')} is not a JSON number" in one_clear_line(result).replace(
        "-Inf", "Inf"
    )
    result = cli("interpret", write("nan_panel.json", '{"b12": ' + token + "}"))
    assert result.exit_code == 2
    assert "is not a JSON number" in one_clear_line(result)


def test_json_panel_numbers_are_read_as_written(cli, write):
    path = write(
        "panel.json",
        '{"patient_id": 12, "sex": "female", "platelets": 180.0, '
        '"context": {"neuro_symptoms": true}}',
    )
    report = cli.json("interpret", path, "--format", "json")
    assert report["patient_id"] == "12"
    assert any(m["analyte"] == "platelets" and m["value"] == 180 for m in report["measurements"])
    flow = write(
        "flow.yaml", "{platelets: 180, patient_id: P7}"
    )  # a YAML flow mapping is still YAML
    assert cli.json("interpret", flow, "--format", "json")["patient_id"] == "P7"


# --- NDJSON told by structure ------------------------------------------------------------


def long_patient(size: int) -> str:
    return json.dumps(
        {
            "resourceType": "Patient",
            "id": "p1",
            "gender": "female",
            "birthDate": "1970-01-01",
            "text": {"status": "generated", "div": "<div>" + "x" * size + "</div>"},
        }
    )


@pytest.mark.parametrize("name", ["bulk.ndjson", "bulk.json", "bulk.txt"])
def test_ndjson_with_a_long_first_line_is_read_as_ndjson(cli, write, name):
    lines = [
        long_patient(150_000),
        json.dumps(observation()),
        json.dumps(observation("777-3", 95, "10*9/L")),
    ]
    path = write(name, "\n".join(lines) + "\n")
    result = cli("batch", path, "--as-of", "2026-11-20")
    assert result.exit_code == 0, result.stderr
    (record,) = rows(result.stdout)
    assert (record["patient_id"], record["b12_status"], record["platelets_flag"]) == (
        "p1",
        "normal",
        "low",
    )
    plan = cli("batch", path, "--plan")
    assert plan.exit_code == 0, plan.stderr
    assert "FHIR bulk NDJSON" in plan.stdout


def test_a_long_one_line_bundle_is_still_one_document(cli, write):
    padding = {"resourceType": "Basic", "id": "x" * 150_000}
    path = write(
        "bundle.json",
        bundle_text(padding, observation(), observation("777-3", 95, "10*9/L")) + "\n",
    )
    result = cli("batch", path, "--as-of", "2026-11-20")
    assert result.exit_code == 0, result.stderr
    assert len(rows(result.stdout)) == 1
    assert "Basic 1" in result.stderr


def test_a_first_line_past_the_line_bound_is_its_records_error_never_read_whole(
    cli, write, monkeypatch
):
    monkeypatch.setattr(fhir, "MAX_LINE_BYTES", 200_000)
    reads = []
    original = fhir._json_line
    monkeypatch.setattr(fhir, "_json_line", lambda line: reads.append(len(line)) or original(line))
    lines = [
        long_patient(1_000_000),
        json.dumps(observation()),
        json.dumps(observation("777-3", 95, "10*9/L")),
    ]
    path = write("bulk.ndjson", "\n".join(lines) + "\n")
    result = cli("batch", path, "--as-of", "2026-11-20")
    assert result.exit_code == 3, result.stderr
    found = rows(result.stdout)
    assert "longer than" in found[0]["error"] and found[0]["line"] == "1"
    assert [r["b12_status"] for r in found[1:]] == ["normal"]
    assert max(reads) <= 200_000


def test_a_json_document_past_the_size_limit_is_refused_without_reading_it_all(
    cli, write, monkeypatch
):
    monkeypatch.setattr(json_text, "MAX_DOCUMENT_BYTES", 100_000)
    path = write("big.json", "{\n" + bundle_text(long_patient(300_000))[1:])
    result = cli("batch", path)
    assert result.exit_code == 2
    assert "larger than" in one_clear_line(result)


def _depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


_TEXT = st.text(alphabet='[]{}"\\ab\n', max_size=8)
_JSON = st.recursive(
    st.none() | st.integers() | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=30,
)


@given(_JSON)
def test_nesting_is_counted_exactly_whatever_the_strings_hold(value):
    text = json.dumps(value)
    assert json_text.nesting_depth(text.encode()) == _depth(value)
    assert json_text.closes_on_its_line(text.encode())
