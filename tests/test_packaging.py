"""The installed package carries its reference ranges; the README's commands match CI."""

from __future__ import annotations

from importlib import resources

from conftest import REPO


def test_the_package_carries_the_same_reference_ranges_as_the_repository():
    packaged = resources.files("b12lab").joinpath("reference_ranges.yaml").read_bytes()
    assert packaged == (REPO / "reference_ranges.yaml").read_bytes()


def test_ci_runs_exactly_the_readme_test_command():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    command = (
        "python3 -m venv .venv && .venv/bin/pip install '.[test]' && .venv/bin/python -m pytest -q"
    )
    assert command in readme
    assert command in ci
