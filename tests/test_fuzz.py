"""Property tests over the whole input surface: no traceback, documented exit codes only."""

from __future__ import annotations

import csv
import io
import math

import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from b12lab.cli import app
from b12lab.inputs.export import sniff_delimiter
from b12lab.ranges import load_ranges
from b12lab.reading.values import measure

RUNNER = CliRunner()
FLAGS = [
    "--b12",
    "--platelets",
    "--anc",
    "--ferritin",
    "--folate",
    "--mma",
    "--homocysteine",
    "--holotc",
    "--hemoglobin",
    "--mcv",
    "--wbc",
    "--neutrophil-pct",
    "--crp",
    "--tsat",
    "--sex",
    "--age",
    "--date",
    "--b12-therapy-start",
    "--days-on-therapy",
    "--guideline",
]
# Example counts, seeds and deadlines come from the profile loaded in conftest.py.
SETTINGS = settings()
text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=40
)


def invoke(*args):
    result = RUNNER.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert "Traceback" not in result.output
    if result.exit_code != 0:
        assert result.stderr.strip(), "a non-zero exit always says why on stderr"
    if result.exit_code == 2:
        assert result.stderr.count("\n") == 1, "an input error is one line"
    return result


@SETTINGS
@given(flag=st.sampled_from(FLAGS), value=text)
def test_any_string_as_a_flag_value(flag, value):
    result = invoke("interpret", "--b12", "300", flag, value, "-f", "json")
    assert result.exit_code in (0, 2)


@SETTINGS
@given(unit=text, number=st.sampled_from(["1", "95", "0.5", "<20", "300"]))
def test_any_string_as_a_unit(unit, number):
    result = invoke("interpret", "--platelets", f"{number} {unit}", "-f", "json")
    assert result.exit_code in (0, 2)


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | text | st.dates(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            text | st.sampled_from(["b12", "panels", "date", "context", "sex"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)
panel_documents = yaml_values | st.dictionaries(
    st.sampled_from(
        [
            "b12",
            "platelets",
            "ferritin",
            "anc",
            "sex",
            "age",
            "date",
            "panels",
            "context",
            "patient_id",
            "hemoglobin",
        ]
    ),
    yaml_values,
    max_size=6,
)


@SETTINGS
@given(document=panel_documents)
def test_any_yaml_document_as_a_panel_file(tmp_path_factory, document):
    path = tmp_path_factory.mktemp("fuzz") / "panel.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    result = invoke("interpret", path, "-f", "json")
    assert result.exit_code in (0, 2)


overlays = st.dictionaries(
    st.sampled_from(
        [
            "analytes",
            "thresholds",
            "guideline_profiles",
            "default_guideline",
            "sources",
            "unit_sets",
            "version",
            "other",
        ]
    ),
    yaml_values
    | st.fixed_dictionaries(
        {
            "platelets": st.fixed_dictionaries(
                {
                    "reference": st.lists(
                        st.dictionaries(
                            st.sampled_from(["low", "high", "sex", "unit", "source", "age_min"]),
                            yaml_values,
                            max_size=3,
                        ),
                        max_size=2,
                    )
                }
            ),
        }
    ),
    max_size=3,
)


@SETTINGS
@given(overlay=overlays)
def test_any_ranges_overlay(tmp_path_factory, overlay):
    path = tmp_path_factory.mktemp("fuzz") / "lab.yaml"
    path.write_text(yaml.safe_dump(overlay, allow_unicode=True), encoding="utf-8")
    result = invoke("ranges", "--ranges", path, "-f", "json")
    assert result.exit_code in (0, 2)


def _decoded(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


@SETTINGS
@example(body=b"\xa0", header=b"patient_id,b12,platelets\n")  # a Windows-1252 NBSP line
@example(body=b"\xff\xfe1\x00\n\x00", header=b"")  # a UTF-16 BOM starts the file
@example(body=b"sep=;\nb12\n1\n", header=b"")  # Excel's delimiter line
@example(body=b'"B12\n(pg/mL)"\n1\n', header=b"")  # a header cell with a line break
@given(
    body=st.binary(max_size=600),
    header=st.sampled_from(
        [
            b"patient_id,b12,platelets\n",
            b"B12;PLT;Ferritin\r\n",
            b"",
            b"\xef\xbb\xbfANC\tCRP\n",
            b"patient,date,test,result,units\n",
        ]
    ),
)
def test_any_bytes_as_a_csv_export(tmp_path_factory, body, header):
    path = tmp_path_factory.mktemp("fuzz") / "export.csv"
    path.write_bytes(header + body)
    result = invoke("batch", path)
    assert result.exit_code in (0, 2, 3)
    if result.exit_code in (0, 3) and header and b'"' not in body and b"\r" not in body:
        # Each line decoded as the reader does: UTF-8, else Windows-1252. A line
        # of only spaces (b"\xa0" is a Windows-1252 no-break space) or of nothing
        # but delimiters is blank.
        text_lines = list(map(_decoded, (header + body).split(b"\n")))
        delimiter = sniff_delimiter(next((t for t in text_lines if t.strip()), ""))
        data_lines = [
            line
            for line in text_lines[1:]
            if line.replace("\x00", "").replace(delimiter, "").strip()
        ]
        rows = list(csv.reader(io.StringIO(result.stdout)))[1:]
        if b"test" not in header:  # wide: one record per non-blank line
            assert len(rows) == len(data_lines)


@SETTINGS
@given(
    analyte=st.sampled_from(
        [
            "b12",
            "folate",
            "homocysteine",
            "mma",
            "hemoglobin",
            "ferritin",
            "crp",
            "platelets",
            "anc",
        ]
    ),
    number=st.decimals(min_value="0.01", max_value="5000", places=2),
    data=st.data(),
)
def test_a_value_that_parses_converts_back_within_rounding(analyte, number, data):
    ranges = load_ranges()
    unit = data.draw(st.sampled_from(ranges.units.accepted(analyte)))
    try:
        measurement, _ = measure(ranges, analyte, f"{number} {unit}")
    except Exception as error:  # implausible for this unit: must say so, not crash
        assert "plausible" in str(error) or "negative" in str(error)
        return
    back = measurement.value / ranges.units.factor(analyte, unit)
    assert math.isclose(back, float(number), rel_tol=1e-9)
