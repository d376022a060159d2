"""The promises of SECURITY.md, each checked."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SAMPLES


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("b12lab tried to open a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_no_network_is_used_by_any_command(cli, no_network, tmp_path):
    assert cli("interpret", SAMPLES / "patient_timeline.yaml", "-f", "text").exit_code == 0
    assert cli("interpret", "--b12", "0.03 ug/dL", "-f", "json").exit_code == 0  # pint path too
    assert cli("batch", SAMPLES / "wide_us.csv", "-o", tmp_path / "o.csv").exit_code == 0
    assert cli("rules").exit_code == 0
    assert cli("ranges", "--ranges", SAMPLES / "lab_overlay.yaml").exit_code == 0
    assert cli("convert", "300", "pg/mL", "--to", "pmol/L").exit_code == 0


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_nothing_is_written_except_where_asked(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "TMPDIR": str(work),
        "PYTHONDONTWRITEBYTECODE": "1",
    }

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "b12lab", *map(str, args)],
            cwd=work,
            env=env,
            capture_output=True,
            check=False,
        )

    assert run("interpret", SAMPLES / "panel.yaml", "--b12", "0.03 ug/dL").returncode == 0
    assert run("batch", SAMPLES / "long_lis.csv").returncode == 0
    assert files_under(home) == set() and files_under(work) == set()
    assert (
        run(
            "batch", SAMPLES / "wide_us.csv", "-o", "out.csv", "--errors", "rejected.csv"
        ).returncode
        == 0
    )
    assert files_under(work) == {"out.csv", "rejected.csv"}
    assert files_under(home) == set()


def test_csv_output_never_starts_a_cell_with_a_formula(cli, tmp_path):
    path = tmp_path / "evil.csv"
    path.write_text(
        'patient_id,date,b12\n"=cmd|\' /C calc\'!A0",2026-01-01,100\n@SUM(1),2026-01-01,"=1+1"\n'
    )
    errors = tmp_path / "errors.csv"
    result = cli("batch", path, "--errors", errors)
    for text in (result.stdout, errors.read_text()):
        for line in text.splitlines()[1:]:
            for cell in line.split(","):
                assert not cell.strip('"').startswith(("=", "+", "-", "@")), line
