"""Any bytes into the message readers: records or one InputError, never another exception."""

from __future__ import annotations

import contextlib
import io
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b12lab.errors import InputError
from b12lab.reading.observation import Observation, SourceProblem
from b12lab.reading.sources.detect import FORMATS, detect_format
from b12lab.reading.sources.fhir import read_fhir_json, read_fhir_ndjson
from b12lab.reading.sources.hl7 import read_hl7

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEGMENTS = st.sampled_from(
    [
        "MSH|^~\\&|LIS|LAB|EHR|W|20261102||ORU^R01|M|P|2.5",
        "PID|1||P1||X||19650312|F",
        "OBR|1||F1|CBC|||202611020800",
        "OBX|1|NM|777-3^PLT^LN||95|10*9/L|150-450|L|||F",
        "OBX|2|SN|2132-9^B12^LN||<^50|pmol/L||LL|||C",
        "OBX|3|NM",
        "FHS|^~\\&",
        "BTS|1",
        "\x0b",
        "\x1c",
    ]
)


def _drain(source) -> list:
    items = list(source)
    assert all(isinstance(i, (Observation, SourceProblem)) for i in items)
    return items


@SETTINGS
@given(st.binary(max_size=400))
def test_any_bytes_into_the_hl7_reader(data):
    with contextlib.suppress(InputError):
        _drain(read_hl7(data))


@SETTINGS
@given(st.lists(SEGMENTS, max_size=14), st.sampled_from(["\r", "\n", "\r\n"]))
def test_any_order_of_segments_into_the_hl7_reader(segments, separator):
    text = separator.join(segments)
    try:
        items = _drain(read_hl7(text))
    except InputError:
        return
    obx = sum(1 for s in segments if s.startswith("OBX"))
    assert len([i for i in items if isinstance(i, Observation)]) <= obx


@SETTINGS
@given(st.binary(max_size=400))
def test_any_bytes_into_the_fhir_readers(data):
    for read in (lambda: read_fhir_json(data), lambda: read_fhir_ndjson(io.BytesIO(data))):
        with contextlib.suppress(InputError):
            _drain(read())
    assert detect_format(data) in FORMATS


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
observation_fields = st.fixed_dictionaries(
    {"resourceType": st.just("Observation")},
    optional={
        "code": json_values,
        "status": json_values,
        "valueQuantity": json_values,
        "subject": json_values,
        "referenceRange": json_values,
        "interpretation": json_values,
        "effectivePeriod": json_values,
        "dataAbsentReason": json_values,
    },
)


@SETTINGS
@given(st.lists(observation_fields | json_values, max_size=6))
def test_every_ndjson_line_gives_at_most_one_record(lines):
    data = "\n".join(json.dumps(line) for line in lines).encode()
    items = _drain(read_fhir_ndjson(io.BytesIO(data)))
    assert len(items) <= len(lines)
    assert len({i.line for i in items}) == len(items)
