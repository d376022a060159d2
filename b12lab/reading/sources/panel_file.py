"""Patient panel files (YAML; JSON is YAML): one patient, one flat panel or a `panels:` list.

Reading is strict about shape and forgiving about spelling: analyte keys may
be any alias or LOINC code, values are written as on the slip.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from b12lab.errors import InputError
from b12lab.inputs.yaml_text import load_yaml
from b12lab.model import Context, Panel
from b12lab.ranges import Ranges
from b12lab.reading.fields import (
    parse_age,
    parse_alcohol,
    parse_date,
    parse_days,
    parse_flag,
    parse_sex,
)
from b12lab.reading.panel import PanelBuilder
from b12lab.reading.policy import NO_RESULT, Note, ReadPolicy
from b12lab.reading.trimester import parse_trimester
from b12lab.reading.values import is_missing

MAX_PANEL_FILE_BYTES = 5_000_000
PATIENT_KEYS = ("patient_id", "sex", "age", "context", "panels", "date")
CONTEXT_FLAGS = ("neuro_symptoms", "hypersegmented_neutrophils")
CONTEXT_KEYS = (
    "b12_therapy_start",
    "days_on_therapy",
    "pregnancy_trimester",
    "alcohol_use",
    *CONTEXT_FLAGS,
)


@dataclass
class RawPanel:
    """One panel's results as written, not yet read: (analyte, key as written, value).

    `values` may be given as a mapping of analyte keys to values for convenience.
    """

    date: dt.date | None
    values: list[tuple[str, str, object]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.values, Mapping):
            self.values = [(key, key, raw) for key, raw in self.values.items()]

    def override(self, analyte: str, raw: object, where: str) -> None:
        """A flag replaces the same analyte from the file (flags override the panel file)."""
        self.values = [cell for cell in self.values if cell[0] != analyte]
        self.values.append((analyte, where, raw))


@dataclass
class PatientRecord:
    patient_id: str | None = None
    sex: str | None = None
    age: float | None = None
    context: Context = field(default_factory=Context)
    panels: list[RawPanel] = field(default_factory=list)


def read_text(path: str, what: str = "panel file") -> str:
    """A whole small text file, or stdin for `-`, with one clear error if unreadable."""
    if path == "-":
        data = sys.stdin.buffer.read(MAX_PANEL_FILE_BYTES + 1)
        label = "standard input"
    else:
        file = Path(path)
        label = path
        try:
            if file.is_dir():
                raise InputError(f"{what} {path} is a directory", fix=f"give a {what}")
            with file.open("rb") as handle:
                data = handle.read(MAX_PANEL_FILE_BYTES + 1)
        except FileNotFoundError:
            raise InputError(f"{what} {path} does not exist", fix="check the path") from None
        except PermissionError:
            raise InputError(
                f"{what} {path} cannot be read (permission denied)",
                fix="check the file's permissions",
            ) from None
        except OSError as error:
            raise InputError(f"cannot read {what} {path}: {error.strerror}") from None
    if len(data) > MAX_PANEL_FILE_BYTES:
        raise InputError(
            f"{what} {label} is larger than {MAX_PANEL_FILE_BYTES // 1_000_000} MB",
            fix="a panel file holds one patient; use 'b12lab batch' for exports",
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with its byte-order mark
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise InputError(
                f"{what} {label} is not valid UTF-16 text", fix="save it as UTF-8"
            ) from None
    if b"\x00" in data:
        raise InputError(
            f"{what} {label} contains binary data (NUL bytes)", fix="give a YAML or JSON text file"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            raise InputError(f"{what} {label} is not text", fix="save it as UTF-8") from None


def read_panel_file(path: str, ranges: Ranges) -> PatientRecord:
    label = "standard input" if path == "-" else path
    document = load_panel_document(read_text(path), label)
    return record_from_document(document, ranges, label)


def load_panel_document(text: str, label: str) -> Any:
    """A panel file's document: JSON through the bounded JSON reader, else YAML.

    Numbers in JSON stay as written ('0.10' stays '0.10') and true/false become
    text, as in YAML. Text that starts like JSON but is not JSON syntax (a YAML
    flow mapping such as `{b12: 180}`) is read as YAML; JSON that b12lab refuses
    (nested too deeply, a key given twice, NaN) is refused.
    """
    from b12lab.inputs.json_text import JsonProblem, parse_json

    if text.lstrip("\ufeff \t\r\n")[:1] in ("{", "["):
        try:
            return _as_written(parse_json(text, limit=MAX_PANEL_FILE_BYTES, numbers_as_text=True))
        except JsonProblem as problem:
            if not problem.syntax:
                where = f" at line {problem.line}" if problem.line else ""
                raise InputError(
                    f"{label} is not valid JSON{where}: {problem.reason}",
                    fix=problem.fix,
                ) from None
    return load_yaml(text, label, typed=False)


def _as_written(value: Any) -> Any:
    """JSON true and false as the text 'true' and 'false', as YAML gives them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return {key: _as_written(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_written(item) for item in value]
    return value


def _analyte_key(key: object, ranges: Ranges, where: str) -> str:
    analyte = ranges.analyte_for(str(key))
    if analyte is None:
        close = ranges.close_analyte(str(key))
        if close is not None:
            raise InputError(
                f"unknown key '{str(key)[:40]}' in {where}: did you mean {close}?",
                field=str(key)[:40],
                fix=f"write '{close}:' (or another analyte key or alias)",
            )
        raise InputError(
            f"unknown key '{str(key)[:40]}' in {where}",
            field=str(key)[:40],
            fix="use an analyte key ("
            + ", ".join(ranges.analytes)
            + ") or "
            + ", ".join(PATIENT_KEYS),
        )
    return analyte


def _raw_panel(
    node: Mapping,
    ranges: Ranges,
    where: str,
    skip: tuple[str, ...] = (),
    date_order: str | None = None,
) -> RawPanel:
    panel = RawPanel(date=parse_date(node.get("date"), f"date in {where}", date_order))
    for key, value in node.items():
        if key in skip or key == "date":
            continue
        analyte = _analyte_key(key, ranges, where)
        panel.values.append((analyte, str(key), value))
    return panel


def record_from_document(
    document: Any, ranges: Ranges, label: str, date_order: str | None = None
) -> PatientRecord:
    """`date_order`: the --date-format for slash dates ("dmy" or "mdy")."""
    if document is None:
        raise InputError(
            f"{label} is empty", fix="write the patient's values, e.g. 'b12: 180 pg/mL'"
        )
    if not isinstance(document, dict):
        raise InputError(
            f"{label} must be a mapping of keys to values, not a {type(document).__name__}",
            fix="write one 'key: value' per line, e.g. 'b12: 180 pg/mL'",
        )
    context = document.get("context") or {}
    if not isinstance(context, dict):
        raise InputError(
            f"context in {label} must be a mapping",
            fix="e.g. 'context: {b12_therapy_start: 2026-09-03}'",
        )
    for key in context:
        if key not in CONTEXT_KEYS:
            raise InputError(
                f"unknown context key '{str(key)[:40]}' in {label}",
                fix="use " + ", ".join(CONTEXT_KEYS),
            )
    alcohol_current, alcohol_stopped = parse_alcohol(context.get("alcohol_use"))
    record = PatientRecord(
        patient_id=_identifier(document.get("patient_id")),
        sex=parse_sex(document.get("sex")),
        age=parse_age(document.get("age")),
        context=Context(
            b12_therapy_start=parse_date(
                context.get("b12_therapy_start"), "b12_therapy_start", date_order
            ),
            days_on_therapy=parse_days(context.get("days_on_therapy")),
            pregnancy_trimester=parse_trimester(context.get("pregnancy_trimester")),
            alcohol_use=alcohol_current,
            alcohol_stopped=alcohol_stopped,
            **{flag: parse_flag(context.get(flag), flag) for flag in CONTEXT_FLAGS},
        ),
    )
    flat = _raw_panel(document, ranges, label, skip=PATIENT_KEYS, date_order=date_order)
    panels = document.get("panels")
    if panels is None:
        record.panels.append(flat)
        return record
    if flat.values:
        raise InputError(
            f"{label} has values both at the top level and under panels:",
            fix="move every value into a dated entry of panels:",
        )
    if not isinstance(panels, list) or not panels:
        raise InputError(
            f"panels in {label} must be a list of dated panels",
            fix="e.g. 'panels: [{date: 2026-09-01, b12: 110 pg/mL}]'",
        )
    for index, node in enumerate(panels, start=1):
        if not isinstance(node, dict):
            raise InputError(
                f"panel {index} in {label} must be a mapping",
                fix="write 'date:' and the values of that panel",
            )
        record.panels.append(
            _raw_panel(node, ranges, f"panel {index} of {label}", date_order=date_order)
        )
    return record


def _identifier(raw: object) -> str | None:
    """A patient id exactly as written (`0012345` stays `0012345`)."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise InputError(
            "patient_id must be a single value", field="patient_id", fix="e.g. 'patient_id: P001'"
        )
    return str(raw).strip() or None


def build_panel(
    cells: list[tuple[str, str, object]],
    ranges: Ranges,
    *,
    date: dt.date | None = None,
    patient_id: str | None = None,
    sex: str | None = None,
    age: float | None = None,
    context: Context | None = None,
    policy: ReadPolicy | None = None,
) -> Panel:
    """Read every value through the reading layer; the first bad one raises (`interpret`)."""
    builder = PanelBuilder(ranges, policy)
    for analyte, where, raw in cells:
        if isinstance(raw, str) and raw.strip() and is_missing(raw):
            builder.note(
                Note(
                    NO_RESULT,
                    analyte,
                    "no result",
                    f"{analyte}: '{raw.strip()}' is a no-result entry; {analyte} not measured",
                )
            )
        builder.add_value(analyte, raw, where=where)
    builder.raise_first_error()
    return builder.panel(context or Context(), date=date, patient_id=patient_id, sex=sex, age=age)
