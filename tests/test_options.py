"""One options object for a batch run, and the input kinds, layouts and formats as enums
found in one place."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from conftest import SAMPLES

from b12lab.batch.options import BatchOptions
from b12lab.batch.run import run_batch
from b12lab.errors import InputError
from b12lab.reading.policy import ReadPolicy
from b12lab.reading.sources.detect import detect_input
from b12lab.vocab import InputFormat, InputKind, Layout, OutputFormat


def test_options_are_frozen_and_given_as_text_or_enum_alike():
    options = BatchOptions(output_format="ndjson", layout="long", keep=["MRN"])
    assert options.output_format is OutputFormat.NDJSON
    assert options.layout is Layout.LONG and options.layout == "long"
    assert options.keep == ("MRN",)
    assert options == BatchOptions(
        output_format=OutputFormat.NDJSON, layout=Layout.LONG, keep=("MRN",)
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.layout = Layout.WIDE  # type: ignore[misc]
    assert options.full_reports and not BatchOptions().full_reports
    assert BatchOptions(timeline=True).noun == "patient"


@pytest.mark.parametrize(
    ("given", "error", "named"),
    [
        ({"layout": "tall"}, InputError, "layout"),
        ({"layout": 3}, TypeError, "layout"),
        ({"output_format": "xlsx"}, InputError, "output_format"),
        ({"input_format": "pdf"}, InputError, "input_format"),
        ({"timeline": "yes"}, TypeError, "timeline"),
        ({"progress": 1}, TypeError, "progress"),
        ({"keep": "MRN"}, TypeError, "keep"),
        ({"mapping": ["B12=b12"]}, TypeError, "mapping"),
        ({"policy": {"decimal": ","}}, TypeError, "policy"),
        ({"today": "2026-11-20"}, TypeError, "today"),
    ],
)
def test_a_bad_option_is_refused_when_the_options_are_built(given, error, named):
    with pytest.raises(error) as raised:
        BatchOptions(**given)
    assert type(raised.value) is error
    assert named in str(raised.value)


def test_options_that_cannot_go_together_are_refused_naming_the_fix():
    with pytest.raises(InputError, match="--keep") as raised:
        BatchOptions(output_format="fhir-ndjson", keep=["MRN"])
    assert "--format ndjson or csv" in str(raised.value)
    with pytest.raises(InputError, match="standard output") as raised:
        BatchOptions(output_format="parquet")
    assert "-o FILE.parquet" in str(raised.value)
    BatchOptions(output_format="parquet", output="results.parquet")  # a file: fine
    with pytest.raises(TypeError, match="not both"):
        BatchOptions.of(BatchOptions(), layout="long")


def test_as_json_holds_how_the_run_read_and_decided():
    options = BatchOptions(
        output="out.csv",
        layout="wide",
        mapping={"vitb12": "b12"},
        policy=ReadPolicy(decimal=",", units={"b12": "pg/mL"}),
        today=dt.date(2026, 11, 20),
        keep=["MRN"],
    )
    shown = options.as_json()
    assert shown["layout"] == "wide" and shown["output_format"] == "csv"
    assert shown["mapping"] == {"vitb12": "b12"} and shown["keep"] == ["MRN"]
    assert shown["policy"]["decimal"] == "," and shown["policy"]["units"] == {"b12": "pg/mL"}
    assert shown["as_of"] == "2026-11-20"
    assert "output" not in shown  # where the run wrote is not how it read


def test_run_batch_takes_options_or_keywords_with_the_same_result(tmp_path, ranges):
    source = str(SAMPLES / "wide_us.csv")
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    today = dt.date(2026, 11, 20)
    run_batch(source, ranges, output=str(first), progress=False, today=today)
    run_batch(source, ranges, BatchOptions(output=str(second), progress=False, today=today))
    assert first.read_bytes() == second.read_bytes()
    assert first.read_text().startswith("line,patient_id,")


@pytest.mark.parametrize(
    ("head", "label", "input_format", "kind"),
    [
        (b"PAR1....", "export.dat", "auto", InputKind.PARQUET),
        (b"ARROW1\x00\x00", "export.dat", "auto", InputKind.ARROW),
        (b"\xff\xff\xff\xff\x10\x00", "standard input", "auto", InputKind.ARROW),
        (b"patient_id,b12\nP1,300\n", "export.parquet", "auto", InputKind.PARQUET),
        (b"patient_id,b12\nP1,300\n", "export.feather", "auto", InputKind.ARROW),
        (b"patient_id,b12\nP1,300\n", "standard input", "auto", InputKind.CSV),
        (b"MSH|^~\\&|LAB\r", "results.txt", "auto", InputKind.HL7V2),
        (b'{"resourceType": "Bundle"}', "bundle.json", "auto", InputKind.FHIR_JSON),
        (b"b12: 300 pg/mL\n", "panel.yaml", "auto", InputKind.YAML),
        (b"PAR1....", "export.dat", "csv", InputKind.CSV),
        (b"anything", "x", "json", InputKind.JSON_PANEL),
        (b"anything", "x", "fhir-ndjson", InputKind.FHIR_NDJSON),
    ],
)
def test_what_an_input_is_is_found_in_one_place(head, label, input_format, kind):
    assert detect_input(head, label, input_format) is kind


def test_input_kinds_say_what_reads_them():
    assert InputKind.PARQUET.is_table and InputKind.PARQUET.has_columns
    assert InputKind.HL7V2.is_message and not InputKind.HL7V2.has_columns
    assert InputKind.CSV.has_columns and not InputKind.CSV.is_message
    assert InputFormat.AUTO.kind is None and InputFormat.JSON.kind is InputKind.JSON_PANEL
    assert f"{InputKind.FHIR_NDJSON}" == "fhir-ndjson" and str(Layout.WIDE) == "wide"
    assert {InputKind.CSV: 1}["csv"] == 1
