"""The README and the documentation site: every command they show runs as shown, and the
site builds with warnings as errors.

A command is a line of a ```sh or ```bash block, or a `$ ` line of a ```console block
(whose following lines, up to the next `$ `, are the output shown). Each runs in bash,
in order page by page, in a copy of the repository's examples (so that the paths the
pages use, such as `examples/panel.yaml`, are the repository root's), with `b12lab`
being this interpreter's `python -m b12lab` and `python` this interpreter. It must end
with exit 0, or with the code its line names in a comment (`# exit 2: ...`), and print
exactly the output shown (stdout and stderr, as a terminal shows them).
Installing commands (venv, pip, pipx, uv) are not run here: `.ci/run` runs the README's
set-up and `tests/test_packaging.py` keeps the two the same.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)
EXIT = re.compile(r"#\s*exit (\d+)\b")
INSTALLING = ("python3 -m venv", "pip install", "pipx ", "uv pip ", "source ")


@dataclass
class Shown:
    page: str
    line: int
    command: str
    output: str | None  # None: no output shown (an sh block)

    @property
    def exit_code(self) -> int:
        found = EXIT.search(self.command)
        return int(found.group(1)) if found else 0


def shown_commands(page: Path) -> list[Shown]:
    text = page.read_text(encoding="utf-8")
    name = str(page.relative_to(REPO))
    commands = []
    for block in FENCE.finditer(text):
        language, body = block.groups()
        first = text.count("\n", 0, block.start()) + 2
        if language == "console":
            for piece in re.finditer(r"^\$ (.*)\n((?:(?!\$ ).*\n)*)", body, re.M):
                line = first + body.count("\n", 0, piece.start())
                commands.append(Shown(name, line, piece.group(1), piece.group(2)))
        elif language in ("sh", "bash"):
            for number, command in enumerate(body.splitlines()):
                if command.strip() and not command.lstrip().startswith("#"):
                    commands.append(Shown(name, first + number, command, None))
    return [shown for shown in commands if not shown.command.startswith(INSTALLING)]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("repository-root")
    shutil.copytree(REPO / "examples", root / "examples")
    shutil.copy(REPO / "reference_ranges.yaml", root)
    (root / "home").mkdir()
    return root


def run(shown: Shown, root: Path) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root / "home"),
        "LANG": "C.UTF-8",
        "COLUMNS": "80",
        "LINES": "24",
        "NO_COLOR": "1",
        "TERM": "dumb",
        "B12LAB_PYTHON": sys.executable,
        "SHELL": "/bin/bash",
    }
    script = (
        "set -o pipefail\n"
        'b12lab() { "$B12LAB_PYTHON" -m b12lab "$@"; }\n'
        'python() { "$B12LAB_PYTHON" "$@"; }\n'
    ) + shown.command
    return subprocess.run(
        ["bash", "-c", script],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_command_a_page_shows_runs_as_shown(page, workspace):
    failures = []
    for shown in shown_commands(page):
        result = run(shown, workspace)
        where = f"{shown.page}:{shown.line}: {shown.command}"
        if result.returncode != shown.exit_code:
            failures.append(f"{where}\n  exit {result.returncode}, expected {shown.exit_code}")
        elif shown.output and result.stdout != shown.output:
            shown_lines, printed = shown.output.splitlines(), result.stdout.splitlines()
            diff = difflib.unified_diff(shown_lines, printed, "shown", "printed", lineterm="")
            failures.append(f"{where}\n" + "\n".join(diff))
        if result.returncode != 0 and shown.exit_code == 0:
            failures[-1] += f"\n  {result.stdout[-600:]}"
    assert not failures, "\n".join(failures)


def test_the_pages_show_commands_and_their_output():
    commands = [shown for page in PAGES for shown in shown_commands(page)]
    assert sum(1 for shown in commands if shown.output) >= 5
    assert {shown.page for shown in commands} >= {"README.md", "docs/usage.md", "docs/batch.md"}


def test_the_documentation_site_builds_with_warnings_as_errors(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # Material's notice of its successor
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    reference = (site / "cli" / "index.html").read_text(encoding="utf-8")
    for command in ("b12lab interpret", "b12lab batch", "b12lab convert", "b12lab rules"):
        assert command in reference
    for option in ("--b12", "--guideline", "--fail-on", "--plan", "--keep", "--as-of"):
        assert option in reference
    assert "cli-reference" not in reference  # the marker was replaced


def test_the_readme_links_to_files_that_exist_and_stays_a_front_page():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)\)", readme)
    local = [target for target in targets if "://" not in target]
    assert "docs/usage.md" in local
    assert [target for target in local if not (REPO / target).exists()] == []
    assert len(readme.splitlines()) <= 250
