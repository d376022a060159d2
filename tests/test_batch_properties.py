"""Properties of batch over generated input: nothing lost or reordered, read as interpret reads."""

from __future__ import annotations

import csv
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b12lab.api import interpret
from b12lab.batch.rows import RowInterpreter
from b12lab.inputs.export import ReadStats, read_header, records, text_lines
from b12lab.outcomes import Outcome

ANALYTE_VALUES = {
    # values around and exactly at the limits, censored, in other units, and missing
    "b12": [
        "100",
        "147 pmol/L",
        "148 pmol/L",
        "200 pmol/L",
        "221 pmol/L",
        "300 pmol/L",
        "664 pmol/L",
        "700 pmol/L",
        "<50",
        "<200 pmol/L",
        ">1476 pg/mL",
        "180 pg/mL",
        "",
    ],
    "platelets": ["10", "20", "95", "150", "300", "450", "600", "1000 10^9/L", "95 K/uL", ""],
    "anc": ["0.4", "0.5", "0.9", "1.0", "1.4", "1.5", "3", "8", ""],
    "wbc": ["2.5", "3.9", "6", ""],
    "neutrophil_pct": ["30", "60", ""],
    "ferritin": ["10", "30", "50", "70", "150", "200", "250", "300", "500", "<5", ""],
    "crp": ["1 mg/L", "5 mg/L", "12", ""],
    "tsat": ["20", "45", "60", ""],
    "hemoglobin": ["6.5 g/dL", "11.9 g/dL", "12.5 g/dL", "14 g/dL", "118", "135", ""],
    "mcv": ["75", "80", "95", "100", "112", ""],
    "folate": ["5 nmol/L", "6.8 nmol/L", "10", ""],
    "mma": ["0.2", "0.4", "0.6", ""],
    "homocysteine": ["10", "15", "25", ""],
    "holotc": ["20", "35", "60", "80", ""],
}
HEADER = ["patient_id", "date", "sex", "age", "b12_therapy_start", *ANALYTE_VALUES]

panel_rows = st.lists(
    st.tuples(
        st.sampled_from(["female", "male", ""]),
        st.sampled_from(["", "8", "40", "70"]),
        st.sampled_from(["", "2026-10-01", "2026-11-18", "2026-09-01", "2026-08-01"]),
        *[st.sampled_from(values) for values in ANALYTE_VALUES.values()],
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=panel_rows, guideline=st.sampled_from(["who", "nice"]))
def test_a_batch_row_reads_and_decides_exactly_like_interpret(ranges, rows, guideline):
    # One reading layer and one engine: a CSV row and the same values given to
    # the Python API give the same status, flags, findings, missing and warnings.
    import datetime as dt

    today = dt.date(2026, 11, 20)

    def numbered():
        for number, (sex, age, start, *values) in enumerate(rows, start=2):
            yield number, [f"P{number}", "2026-11-20", sex, age, start, *values], None

    interpreter = RowInterpreter.for_header(HEADER, ranges, guideline=guideline, today=today)
    for (sex, age, start, *values), record in zip(rows, interpreter(numbered()), strict=True):
        given = {a: v for a, v in zip(ANALYTE_VALUES, values, strict=True) if v}
        report = interpret(
            given,
            sex=sex or None,
            age=age or None,
            date=today,
            b12_therapy_start=start or None,
            guideline=guideline,
            today=today,
            patient_id=record.patient_id,
        )
        assert record.outcome == Outcome.of(report)
        assert record.warnings == report.warnings
        assert record.errors == ()


cells = st.one_of(
    st.sampled_from(
        [
            "",
            "n/a",
            "NA",
            "-",
            "pending",
            "180 pg/mL",
            "<50",
            "1,5",
            "95 K/uL",
            "250000 x10^9/L",
            "abc",
            "=SUM(A1)",
            "12 parsecs",
            "2026-02-30",
            '"quoted, cell"',
            "F",
            "m",
            "x",
            "1e999",
        ]
    ),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12),
)
headers = st.lists(
    st.sampled_from(
        [
            "patient_id",
            "date",
            "sex",
            "age",
            "B12",
            "PLT",
            "Ferritin (ng/mL)",
            "ANC",
            "CRP",
            "notes",
            "hemoglobin",
            "hemoglobin_unit",
            "NEUT%",
            "WBC",
        ]
    ),
    min_size=1,
    max_size=8,
    unique=True,
).filter(
    lambda h: any(
        c in h
        for c in ("B12", "PLT", "Ferritin (ng/mL)", "ANC", "CRP", "hemoglobin", "WBC", "NEUT%")
    )
)


@settings(max_examples=150, deadline=None)
@given(
    header=headers,
    body=st.lists(st.lists(cells, min_size=0, max_size=10), min_size=0, max_size=25),
    delimiter=st.sampled_from([",", ";", "\t"]),
    newline=st.sampled_from(["\n", "\r\n"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]),
)
def test_every_data_row_of_a_messy_wide_export_gets_one_record_in_order(
    ranges, header, body, delimiter, newline, encoding
):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline)
    writer.writerow(header)
    for row in body:
        writer.writerow(row)
    data = buffer.getvalue().encode(encoding, errors="replace")

    lines = text_lines(io.BytesIO(data), ReadStats())
    header, rest = read_header(lines, "test")
    parsed_header, sniffed, skipped = header.cells, header.delimiter, header.lines
    interpreter = RowInterpreter.for_header(
        parsed_header, ranges, layout="wide", full_reports=False
    )
    expected = list(records(rest, sniffed, skipped))
    # An independent count: every non-blank record after the header.
    text = data.decode(encoding, errors="replace").lstrip("\ufeff")
    independent = [
        row
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=sniffed)
        if row and any(cell.strip() for cell in row)
    ][1:]
    out = list(interpreter((r.line, r.cells, r.problem) for r in expected))
    assert len(out) == len(expected)
    # Never fewer records than panels; more only where broken quoting is reported.
    assert len(expected) >= len(independent)
    if len(expected) > len(independent):
        assert any(r.problem for r in expected)
    assert [r.first_line for r in out] == sorted(r.first_line for r in out)
