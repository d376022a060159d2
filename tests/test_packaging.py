"""The installed package carries its reference ranges; the README's commands match CI."""

from __future__ import annotations

from importlib import resources

import pytest
from conftest import REPO


def test_the_package_carries_the_same_reference_ranges_as_the_repository():
    packaged = resources.files("b12lab").joinpath("reference_ranges.yaml").read_bytes()
    assert packaged == (REPO / "reference_ranges.yaml").read_bytes()


def test_ci_runs_exactly_the_readme_test_command():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    command = (
        "python3 -m venv .venv && .venv/bin/pip install -c requirements/ci.txt '.[test]' "
        "&& .venv/bin/python -m pytest -q"
    )
    assert command in readme
    assert command in ci


def test_the_lock_file_pins_every_dependency_within_what_the_project_asks():
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    tomllib = pytest.importorskip("tomllib")  # Python 3.11, as CI
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lock = (REPO / "requirements" / "ci.txt").read_text(encoding="utf-8")
    pins = {}
    for line in lock.splitlines():
        if line and not line.startswith((" ", "#")):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    wanted = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    for text in wanted:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements/ci.txt: refresh it (README)"
        assert requirement.specifier.contains(pins[name], prereleases=True), (name, pins[name])
