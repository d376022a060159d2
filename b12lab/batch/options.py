"""The options of one batch run, as one frozen object that checks itself when built.

`b12lab batch` (the CLI), `b12lab.batch.run.run_batch`, the laboratory-message
and Parquet/Arrow runs, the table API (`b12lab.batch.table`) and `interpret_rows`
all take a `BatchOptions`, rather than the same parameters each. A value of
the wrong type is a TypeError naming the option; a value no run could use, or
two options that cannot go together, an InputError naming the fix, before any
row is read.

This module imports nothing heavy: the one-patient path never needs it.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

from b12lab.errors import InputError
from b12lab.reading.policy import AUTO, ReadPolicy
from b12lab.vocab import (
    InputFormat,
    Layout,
    OutputFormat,
    Word,
    contradicted_by_name,
    renamed_for,
)


def _problem(name: str, value: object, expected: str, example: str) -> str:
    return f"{name}={value!r}: expected {expected}; e.g. {name}={example}"


def _word(name: str, value: object, kind: type[Word], example: str) -> Word:
    """`value` as a member of `kind`: TypeError for a non-text, InputError for an unknown."""
    if isinstance(value, kind):
        return value
    if not isinstance(value, str):
        raise TypeError(_problem(name, value, f"one of {kind.choices()}", repr(example)))
    try:
        return kind(value)
    except ValueError:
        raise InputError(
            f"{name}={value!r}: expected one of {kind.choices()}", fix=f"e.g. {name}={example!r}"
        ) from None


@dataclass(frozen=True)
class BatchOptions:
    """How one batch run reads, decides and writes (see the module text).

    - `output`: the file written (None or `-`: standard output); `output_format`;
      `errors_path`: the --errors file; `progress`: a progress display at a terminal;
    - `input_format`: `auto` or the kind the input is read as; `layout`;
      `mapping`: --map, as `b12lab.reading.columns.parse_map` gives it;
    - `guideline`: the B12 cut-off profile (None: the ranges file's default);
      `policy`: how cells are read (decimal mark, --strict, --unit, --date-format);
      `today`: the evaluation date (--as-of; None: today);
    - `timeline`: one record per patient; `keep`: --keep entries (COL[,COL...]);
    - `rules`: a laboratory's rules (--rules, loaded: a `b12lab.rules.catalogue.Catalogue`;
      None: b12lab's own), which judge every row of the run;
    - `workers`: processes that decide a large export's rows (1: this one alone).
    """

    output: str | None = None
    output_format: OutputFormat = OutputFormat.CSV
    errors_path: str | None = None
    progress: bool = True
    input_format: InputFormat = InputFormat.AUTO
    layout: Layout = Layout.AUTO
    mapping: Mapping[str, str] = field(default_factory=dict)
    guideline: str | None = None
    policy: ReadPolicy = field(default_factory=lambda: ReadPolicy(decimal=AUTO))
    today: dt.date | None = None
    timeline: bool = False
    keep: tuple[str, ...] = ()
    rules: Any = None
    workers: int = 1

    def __post_init__(self) -> None:
        def fix(name: str, value: object) -> None:
            object.__setattr__(self, name, value)

        fix("output_format", _word("output_format", self.output_format, OutputFormat, "csv"))
        fix("input_format", _word("input_format", self.input_format, InputFormat, "auto"))
        fix("layout", _word("layout", self.layout, Layout, "long"))
        for name in ("progress", "timeline"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(_problem(name, getattr(self, name), "True or False", "True"))
        for name in ("output", "errors_path", "guideline"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise TypeError(_problem(name, value, "a text or None", "'results.csv'"))
            if isinstance(value, os.PathLike):
                fix(name, os.fspath(value))
        mapping = self.mapping if self.mapping is not None else {}
        if not (
            isinstance(mapping, Mapping)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items())
        ):
            raise TypeError(_problem("mapping", mapping, "a dict of texts", "{'Vit B12': 'b12'}"))
        fix("mapping", MappingProxyType(dict(mapping)))
        keep = self.keep if self.keep is not None else ()
        if isinstance(keep, str) or not (
            isinstance(keep, Sequence) and all(isinstance(name, str) for name in keep)
        ):
            raise TypeError(_problem("keep", keep, "a list of column names", "['patient_id']"))
        fix("keep", tuple(keep))
        if not isinstance(self.policy, ReadPolicy):
            raise TypeError(_problem("policy", self.policy, "a ReadPolicy", "ReadPolicy()"))
        if isinstance(self.workers, bool) or not isinstance(self.workers, int):
            raise TypeError(_problem("workers", self.workers, "a whole number", "2"))
        if self.workers < 1:
            raise InputError(f"workers={self.workers}: expected 1 or more", fix="e.g. workers=2")
        if self.rules is not None:
            from b12lab.rules.catalogue import Catalogue

            if not isinstance(self.rules, Catalogue):
                raise TypeError(
                    _problem("rules", self.rules, "a loaded rules file", "load_lab_rules(path)")
                )
        if self.today is not None and not isinstance(self.today, dt.date):
            raise TypeError(_problem("today", self.today, "a date", "date(2026, 11, 20)"))
        if self.keep and not self.output_format.takes_kept:
            raise InputError(
                "--keep is written to csv, ndjson and json output; "
                + (
                    "a FHIR Bundle"
                    if self.output_format is OutputFormat.FHIR_NDJSON
                    else "the text table"
                )
                + " has no place for export columns",
                fix="use --format ndjson or csv with --keep",
            )
        if self.output_format.binary:
            self._check_binary_output()
        self._check_names()

    def _check_names(self) -> None:
        """Binary data is never written under a text format's name, nor text under a
        binary one's: `-o results.parquet --format csv` is refused, and so is an errors
        file (always CSV) named `rejected.parquet`. Between text formats, the one asked
        for is written and `name_notes` says so."""
        for named, written, given in self._named_formats():
            if named.binary or written.binary:
                if given == "--errors":
                    raise InputError(
                        f"--errors {self.errors_path} names {named} output, but the errors "
                        "file is always CSV",
                        fix=f"name it {renamed_for(self.errors_path, written)}",
                    )
                raise InputError(
                    f"-o {self.output} names {named} output, but --format {written} was given",
                    fix=f"drop --format to write {named}, or name the output "
                    f"{renamed_for(self.output, written)}",
                )

    def _named_formats(self) -> list[tuple[OutputFormat, OutputFormat, str]]:
        """(the format a file's name says, the format written into it, its option) for
        each output whose name says another format than its own."""
        found = []
        for path, written, given in (
            (self.output, self.output_format, "-o"),
            (self.errors_path, OutputFormat.CSV, "--errors"),
        ):
            if path not in (None, "-"):
                named = contradicted_by_name(path, written)
                if named is not None:
                    found.append((named, written, given))
        return found

    def name_notes(self) -> list[str]:
        """What the run says of an output named for another text format than the one
        written into it (`-o results.json --format csv`): it is written as asked."""
        notes = []
        for named, written, given in self._named_formats():
            path = self.output if given == "-o" else self.errors_path
            why = "as --format says" if given == "-o" else "the errors file is always CSV"
            notes.append(f"{given} {path} names {named} output; it holds {written} ({why})")
        return notes

    def _check_binary_output(self) -> None:
        """A binary format (Parquet) is written only to a file named with -o, never to
        standard output or a terminal."""
        if self.output in (None, "-"):
            where = "standard output"
        elif _names_terminal(self.output):
            where = f"the terminal {self.output}"
        else:
            return
        name = self.output_format.value
        raise InputError(
            f"{name.capitalize()} output is binary and is not written to {where}",
            fix=f"give a file with -o FILE.{name}",
        )

    @classmethod
    def of(cls, options: BatchOptions | None = None, **given: Any) -> BatchOptions:
        """`options`, or options built from keyword arguments (not both)."""
        if options is not None and given:
            raise TypeError("give a BatchOptions or keyword options, not both")
        if options is not None:
            return options
        if given.get("policy") is None:
            given.pop("policy", None)
        for name in ("mapping", "keep"):
            if given.get(name) is None:
                given.pop(name, None)
        return cls(**given)

    def but(self, **changes: Any) -> BatchOptions:
        """A copy with some options changed (checked again)."""
        return replace(self, **changes)

    @property
    def full_reports(self) -> bool:
        return self.output_format.full_reports

    @property
    def noun(self) -> str:
        """What one record is: a panel, or with --timeline a patient."""
        return "patient" if self.timeline else "panel"

    def interpreter_options(self) -> dict[str, Any]:
        """The keyword arguments of `RowInterpreter` these options give."""
        return {
            "guideline": self.guideline,
            "policy": self.policy,
            "today": self.today,
            "full_reports": self.full_reports,
            "json_records": self.output_format.json_records,
            "timeline": self.timeline,
            "keep": self.keep,
            "rules": self.rules,
        }

    def as_json(self) -> dict[str, Any]:
        """The options as plain JSON values (Parquet output records them)."""
        shown: dict[str, Any] = {}
        for option in fields(self):
            value = getattr(self, option.name)
            if option.name in ("output", "errors_path", "progress", "workers"):
                continue  # where this run wrote, not how it read and decided
            if option.name == "policy":
                value = {
                    "decimal": value.decimal,
                    "strict": value.strict,
                    "units": dict(value.units),
                    "date_order": value.date_order,
                }
            elif isinstance(value, Word):
                value = value.value
            elif isinstance(value, Mapping):
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, dt.date):
                value = value.isoformat()
            elif option.name == "rules" and value is not None:
                value = {"file": value.origin, "sha256": value.sha256}
            shown["as_of" if option.name == "today" else option.name] = value
        return shown


def _names_terminal(path: str) -> bool:
    try:
        if not stat.S_ISCHR(os.stat(path).st_mode):
            return False
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_NOCTTY", 0) | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        return os.isatty(handle)
    finally:
        os.close(handle)
