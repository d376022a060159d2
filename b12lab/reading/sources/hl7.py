"""HL7 v2 ORU^R01 result messages (2.3 to 2.5.1) -> Observation records.

A file may hold several messages, with or without MLLP framing (0x0B ...
0x1C 0x0D) and FHS/BHS batch envelopes, and its segments may end in CR, LF or
CR LF. The file is cut into messages here; each message is then parsed by
python-hl7 (`hl7` on PyPI), which takes the field, component, repetition,
escape and subcomponent characters from the message's own MSH-1 and MSH-2.
A message that cannot be read is a SourceProblem naming its number, and the
next message is still read.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from b12lab.errors import InputError
from b12lab.reading.observation import Observation, SourceProblem

Record = Observation | SourceProblem
ENVELOPE = {"FHS", "BHS", "BTS", "FTS"}
NO_RESULT_STATUS = {  # OBX-11 codes that carry no usable result
    "X": "cancelled (OBX-11 X: result cannot be obtained)",
    "D": "deleted (OBX-11 D)",
    "W": "withdrawn as wrong (OBX-11 W)",
    "I": "pending (OBX-11 I: specimen in laboratory)",
    "N": "not asked (OBX-11 N)",
}
PROVISIONAL_STATUS = {  # OBX-11 codes of a result that may still change
    "P": "preliminary (OBX-11 P)",
    "R": "entered, not verified (OBX-11 R)",
    "S": "partial (OBX-11 S)",
}
COMPARATORS = {"<", ">", "<=", ">="}
_SEGMENT_ID = re.compile(r"^[A-Z][A-Z0-9]{2}$")
_TIMESTAMP = re.compile(
    r"^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})?(\d{2})?(?:\.\d{1,4})?)?([+-]\d{4})?$"
)
MAX_FILE_BYTES = 512 * 1024 * 1024


class Hl7Records:
    """The records of one HL7 v2 file, produced as they are iterated.

    `skipped` counts the messages of other types (ADT^A08, ORM^O01, ...) by
    their MSH-9 type; it is complete once iteration has finished.
    """

    def __init__(self, text: str, label: str):
        self.skipped: Counter = Counter()
        self._text = text
        self._label = label

    def __iter__(self) -> Iterator[Record]:
        for number, first_line, segments in _messages(self._text):
            yield from _message_records(number, first_line, segments, self.skipped)


@dataclass(frozen=True)
class _Result:
    observation: Observation
    status: str
    problem: SourceProblem | None = None  # a result that is there but cannot be read


def read_hl7(data: bytes | str, label: str = "input") -> Hl7Records:
    """The messages of one HL7 v2 file; raises InputError if it holds no HL7 at all."""
    if isinstance(data, bytes):
        if len(data) > MAX_FILE_BYTES:
            raise InputError(
                f"{label} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB",
                fix="split the HL7 file into smaller batches",
            )
        if b"\x00" in data:
            raise InputError(
                f"{label} is not an HL7 v2 text file (binary data?)",
                fix="give HL7 v2 messages as text, one segment per line",
            )
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:  # HL7 v2 predates UTF-8; ISO 8859-1 is the usual default
            text = data.decode("latin-1")
    else:
        text = data
    text = text.replace("\r\n", "\r").replace("\n", "\r").replace("\x0b", "").replace("\x1c", "\r")
    if not re.search(r"(?:^|\r)[ \t]*MSH[^A-Za-z0-9\s]", text):
        raise InputError(
            f"{label} holds no HL7 v2 message (no MSH segment)",
            fix="give ORU^R01 messages starting with MSH|^~\\&",
        )
    return Hl7Records(text, label)


def _messages(text: str) -> Iterator[tuple[int, int, list[tuple[int, str]]]]:
    """(message number, first line, [(line, segment)]) for each MSH in the file."""
    number = 0
    first_line = 0
    current: list[tuple[int, str]] | None = None
    stray: list[int] = []
    for line_number, raw in enumerate(text.split("\r"), start=1):
        segment = raw.strip(" \t")
        if not segment:
            continue
        tag = segment[:3]
        if tag in ENVELOPE:
            if current is not None:
                yield number, first_line, current
                current = None
            continue
        if tag == "MSH":
            if current is not None:
                yield number, first_line, current
            number += 1
            first_line = line_number
            current = [(line_number, segment)]
        elif current is not None:
            current.append((line_number, segment))
        else:
            stray.append(line_number)
    if current is not None:
        yield number, first_line, current
    if stray:
        yield 0, stray[0], [(stray[0], "")]


def _message_records(
    number: int, first_line: int, segments: list[tuple[int, str]], skipped: Counter
) -> Iterator[Record]:
    where = f"message {number}"
    if number == 0:
        yield SourceProblem(
            f"line {first_line}", first_line, "text outside any HL7 message (before MSH)"
        )
        return
    problem = _envelope_problem(segments)
    if problem is not None:
        yield SourceProblem(where, first_line, f"{where}: {problem}")
        return
    import hl7

    try:
        message = hl7.parse("\r".join(segment for _, segment in segments))
        msh = message.segment("MSH")
        kind = _field(msh, 9, component=1).upper()
        event = _field(msh, 9, component=2).upper()
    except Exception as error:  # python-hl7 raises assorted errors on broken text
        yield SourceProblem(where, first_line, f"{where} cannot be parsed: {_brief(error)}")
        return
    if kind != "ORU" or event not in ("R01", ""):
        skipped[f"{kind or '?'}^{event}" if event else kind or "?"] += 1
        return
    try:
        results = list(_results(message, number, [line for line, _ in segments]))
    except Exception as error:
        yield SourceProblem(where, first_line, f"{where} cannot be read: {_brief(error)}")
        return
    if not results:
        yield SourceProblem(
            where, first_line, f"{where} has no OBX result segments (truncated message?)"
        )
        return
    yield from _latest_results(results)


def _envelope_problem(segments: list[tuple[int, str]]) -> str | None:
    """Why the MSH segment's separators cannot be trusted, if they cannot."""
    msh = segments[0][1]
    if len(msh) < 8:
        return "MSH segment is truncated"
    separator = msh[3]
    if separator.isalnum() or separator.isspace():
        return f"field separator '{separator}' in MSH-1 is not a punctuation character"
    end = msh.find(separator, 4)
    if end < 0:
        return "MSH segment is truncated (MSH-2 never ends)"
    encoding = msh[4:end]
    if not 2 <= len(encoding) <= 5:
        return f"encoding characters '{encoding}' in MSH-2 should be 4 characters such as ^~\\&"
    if len(set(encoding + separator)) != len(encoding) + 1 or any(
        ch.isalnum() or ch.isspace() for ch in encoding
    ):
        return (
            f"encoding characters '{encoding}' in MSH-2 repeat each other or the field "
            "separator, or are letters or digits"
        )
    for _, segment in segments[1:]:
        if not _SEGMENT_ID.match(segment[:3]) or (len(segment) > 3 and segment[3] != separator):
            return f"segment '{segment[:12]}' is not an HL7 segment (truncated or corrupted?)"
    return None


def _results(message: Any, number: int, lines: list[int]) -> Iterator[_Result | SourceProblem]:
    patient_id = sex = birth_date = None
    group = collected = None
    obx_number = 0
    for position, segment in enumerate(message):
        tag = str(segment[0])
        if tag == "PID":
            patient_id = _field(segment, 3, component=1) or _field(segment, 2, component=1) or None
            birth_date = _hl7_time(_field(segment, 7, component=1), date_only=True)
            sex = _field(segment, 8, component=1) or None
        elif tag == "OBR":
            group = _field(segment, 3, component=1) or _field(segment, 2, component=1) or None
            collected = _hl7_time(_field(segment, 7, component=1))
        elif tag == "OBX":
            obx_number += 1
            where = f"message {number}, OBX {obx_number}"
            line = lines[position]
            code, system = _obx_code(segment)
            if code is None:
                yield SourceProblem(where, line, f"{where}: OBX-3 has no code", patient_id)
                continue
            status = _field(segment, 11, component=1).upper()
            if len(segment) <= 5 and status not in NO_RESULT_STATUS:
                yield SourceProblem(
                    where, line, f"{where} stops before OBX-5 (truncated?)", patient_id
                )
                continue
            value, comparator = _obx_value(segment)
            absent = NO_RESULT_STATUS.get(status)
            problem = None
            if absent is not None:
                value, comparator = None, None
            else:
                reason = _numeric_problem(segment)
                if reason is not None:
                    problem = SourceProblem(where, line, f"{where} ({code}): {reason}", patient_id)
            observation = Observation(
                where=where,
                line=line,
                code=code,
                value=value,
                unit=_field(segment, 6, component=1) or _field(segment, 6, component=2) or None,
                unit_text=_second_unit(segment),
                comparator=comparator,
                patient_id=patient_id,
                collected=collected or _hl7_time(_field(segment, 14, component=1)),
                sex=sex,
                birth_date=birth_date,
                group=group,
                lab_reference=_field(segment, 7, component=1) or None,
                lab_flag=_first_repetition(segment, 8),
                absent_reason=absent,
                provisional=PROVISIONAL_STATUS.get(status),
                code_system=system,
                display=_field(segment, 3, component=2) or _field(segment, 3, component=5) or None,
            )
            yield _Result(observation, status, problem)


def _latest_results(results: list[_Result | SourceProblem]) -> Iterator[Record]:
    """A corrected (C) result replaces the other results of its code in its own order:
    the same patient, order (OBR) and collection time. Other patients' and other
    orders' results of that code are kept."""
    corrected: dict[tuple, int] = {}
    for index, item in enumerate(results):
        if isinstance(item, _Result) and item.status == "C":
            corrected[_correction_key(item.observation)] = index
    replaced: dict[int, list[str]] = {}  # what each correction replaces, said in its record
    for index, item in enumerate(results):
        if isinstance(item, _Result):
            latest = corrected.get(_correction_key(item.observation))
            if latest is not None and latest != index:
                replaced.setdefault(latest, []).append(_as_sent(item.observation))
    for index, item in enumerate(results):
        if isinstance(item, SourceProblem):
            yield item
            continue
        latest = corrected.get(_correction_key(item.observation))
        if latest is None:
            yield item.problem or item.observation
        elif latest == index:
            yield item.problem or replace(item.observation, replaces=tuple(replaced.get(index, ())))


def _as_sent(observation: Observation) -> str:
    """A replaced result as its message gave it: "message 1, OBX 2: 150 pg/mL"."""
    if observation.value is None:
        return f"{observation.where}: no value"
    value = f"{observation.comparator or ''}{observation.value}"[:40]
    return f"{observation.where}: {value} {(observation.unit or '')[:40]}".rstrip()


def _correction_key(observation: Observation) -> tuple:
    return (
        observation.patient_id,
        observation.group,
        observation.collected,
        observation.code,
    )


def _obx_code(segment: Any) -> tuple[str | None, str | None]:
    """OBX-3: the LOINC code when either coding is LN, else the first code and its system."""
    identifier, text, system = (_field(segment, 3, component=i) for i in (1, 2, 3))
    alternate, alternate_system = _field(segment, 3, component=4), _field(segment, 3, component=6)
    if system.upper() != "LN" and alternate_system.upper() == "LN" and alternate:
        return alternate, "LN"
    if identifier:
        return identifier, system.upper() if system.upper() == "LN" else system or None
    if text:
        return text, None
    return None, None


def _obx_value(segment: Any) -> tuple[str | None, str | None]:
    """OBX-5 as text, with an SN structured numeric split into comparator and number."""
    value_type = _field(segment, 2, component=1).upper()
    if value_type == "SN":
        comparator, first, joiner, second = (_field(segment, 5, component=i) for i in (1, 2, 3, 4))
        comparator = comparator if comparator in COMPARATORS else None
        if joiner and second:
            return f"{first}{joiner}{second}", comparator
        return first or None, comparator
    if value_type in ("CE", "CWE", "CNE"):
        return (_field(segment, 5, component=2) or _field(segment, 5, component=1)) or None, None
    return _field(segment, 5, component=1) or None, None


def _second_unit(segment: Any) -> str | None:
    """OBX-6's text (component 2) when it differs from its identifier, read as the unit."""
    identifier, text = _field(segment, 6, component=1), _field(segment, 6, component=2)
    return text if identifier and text and text.strip() != identifier.strip() else None


def _numeric_problem(segment: Any) -> str | None:
    """Why an NM value, or an SN value's numbers, cannot be read as an HL7 number.

    The HL7 NM data type is an optional sign, digits and an optional decimal
    point: a comma there is neither a decimal mark nor a thousands separator
    the standard allows, and `1,5` and `1,500` would each be a guess.
    """
    value_type = _field(segment, 2, component=1).upper()
    if value_type == "NM":
        numbers = [_field(segment, 5, component=1)]
    elif value_type == "SN":
        numbers = [_field(segment, 5, component=i) for i in (2, 4)]
    else:
        return None
    for number in numbers:
        if "," in number:
            return (
                f"OBX-5 '{number[:40]}' is not an HL7 number (value type {value_type} takes "
                "a decimal point and no comma); send it with a decimal point, e.g. 1.5, and "
                "no thousands separator"
            )
    return None


def _field(segment: Any, number: int, component: int = 1) -> str:
    try:
        text = segment.extract_field(field_num=number, component_num=component)
    except (IndexError, KeyError, ValueError):
        return ""
    return str(text).strip()


def _first_repetition(segment: Any, number: int) -> str | None:
    repetition = 1
    while repetition <= 5:
        try:
            text = segment.extract_field(field_num=number, repeat_num=repetition)
        except (IndexError, KeyError, ValueError):
            return None
        if str(text).strip():
            return str(text).strip()
        repetition += 1
    return None


def _hl7_time(text: str, *, date_only: bool = False) -> str | None:
    """HL7 TS '202611020830+0100' -> ISO '2026-11-02T08:30+01:00'; other text as sent."""
    if not text:
        return None
    match = _TIMESTAMP.match(text)
    if match is None:
        return text
    year, month, day, hour, minute, second, zone = match.groups()
    iso = f"{year}-{month}-{day}"
    if date_only or hour is None:
        return iso
    iso += f"T{hour}:{minute or '00'}" + (f":{second}" if second else "")
    return iso + (f"{zone[:3]}:{zone[3:]}" if zone else "")


def _brief(error: Exception) -> str:
    return " ".join(str(error).split())[:120] or type(error).__name__
