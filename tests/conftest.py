from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from typer.testing import CliRunner

from b12lab.api import interpret
from b12lab.cli import app
from b12lab.ranges import load_ranges

# Property tests: "ci" (the default, used by `python -m pytest -q`) runs a fixed,
# derandomized set of examples, so every run gives the same answer; "deep" is a
# longer random search: B12LAB_HYPOTHESIS_PROFILE=deep python -m pytest -q.
# An example a search finds is kept in the test as an explicit @example.
settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=100,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "deep",
    derandomize=False,
    max_examples=5000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("B12LAB_HYPOTHESIS_PROFILE", "ci"))

TODAY = dt.date(2026, 11, 20)
REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "examples"
DATA = Path(__file__).with_name("data")


@pytest.fixture(scope="session")
def ranges():
    return load_ranges()


def report_for(values, **context):
    """Interpret a panel with a fixed 'today' so that therapy days are reproducible."""
    context.setdefault("today", TODAY)
    context.setdefault("date", TODAY)
    return interpret(values, **context)


def finding_ids(report) -> list[str]:
    return [f.id for f in report.findings]


class Cli:
    def __init__(self):
        self.runner = CliRunner()

    def __call__(self, *args, input=None, env=None):
        return self.runner.invoke(app, [str(a) for a in args], input=input, env=env)

    def json(self, *args, input=None):
        result = self(*args, input=input)
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture
def cli():
    return Cli()


def one_clear_line(result) -> str:
    """The single stderr line of a failed command; never a traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def canonical_measurement(ranges, analyte, value, censored=None, lab_flag=None, lab_reference=None):
    """A measurement given in its analyte's canonical unit (its input the value as typed)."""
    from b12lab.model import Measurement

    spec = ranges.analytes[analyte]
    return Measurement(
        analyte=analyte,
        value=value,
        unit=spec.canonical_unit,
        input=f"{censored or ''}{value}",
        censored=censored,
        decimals=spec.decimals,
        lab_flag=lab_flag,
        lab_reference=lab_reference,
    )
