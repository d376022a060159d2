"""b12lab at a real terminal: each run here has a pseudo-terminal (as a terminal
window, tmux or `script` give) for whatever the shell does not redirect.

What the user sees on the screen is the pseudo-terminal's output; what lands in
a file or in the next program of a pipe is checked apart from it. Data goes to
stdout or -o only, progress and notes to stderr only, whatever is a terminal.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
B12LAB = f"{shlex.quote(sys.executable)} -m b12lab"
SGR = re.compile(r"\x1b\[([0-9;]*)m")


def color_codes(text: str) -> list[str]:
    """The SGR sequences of `text` that set a foreground or background color."""
    found = []
    for match in SGR.finditer(text):
        for parameter in filter(None, match.group(1).split(";")):
            number = int(parameter)
            if 30 <= number <= 49 or 90 <= number <= 107:
                found.append(match.group(0))
                break
    return found


def environment(**changes: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update({"TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"})
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def at_terminal(command: str, cwd: Path, *, env: dict | None = None, timeout: float = 120):
    """Run a shell command line with a pseudo-terminal: (exit status, what the screen got)."""
    child = pexpect.spawn(
        "bash",
        ["-o", "pipefail", "-c", command],
        cwd=str(cwd),
        env=env or environment(),
        encoding="utf-8",
        codec_errors="replace",
        dimensions=(24, 80),
        timeout=timeout,
    )
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before


@pytest.fixture(scope="module")
def big_export(tmp_path_factory) -> Path:
    """A wide export long enough that a run lasts a while."""
    lines = (EXAMPLES / "wide_us.csv").read_text().splitlines()
    header, rows = lines[0], [line for line in lines[1:] if line.split(",")[4]]
    path = tmp_path_factory.mktemp("export") / "big.csv"
    with path.open("w") as out:
        out.write(header + "\n")
        for number in range(60_000):
            row = rows[number % len(rows)].split(",")
            row[0] = f"P{number:06d}"
            out.write(",".join(row) + "\n")
    return path


def test_redirecting_stdout_puts_the_data_in_the_file(tmp_path):
    status, screen = at_terminal(f"{B12LAB} batch {EXAMPLES}/wide_us.csv > out.csv", tmp_path)
    data = (tmp_path / "out.csv").read_text()
    assert status == 0, screen
    assert data.startswith("line,patient_id,"), screen
    assert len(data.splitlines()) == 6  # the header and the five panels
    assert "patient_id" not in screen and "S001" not in screen
    assert "b12lab: 5 panels" in screen  # the summary stays on the screen (stderr)


def test_a_pipe_to_another_program_gets_every_record(tmp_path):
    program = "import json, sys\nfor line in sys.stdin: print(json.loads(line)['b12_status'])"
    reader = f"{shlex.quote(sys.executable)} -c {shlex.quote(program)}"
    status, screen = at_terminal(
        f"{B12LAB} batch {EXAMPLES}/long_lis.csv --format ndjson | {reader} > statuses.txt",
        tmp_path,
    )
    assert status == 0, screen
    statuses = (tmp_path / "statuses.txt").read_text().split()
    assert len(statuses) >= 2 and all(s and s != "None" for s in statuses), screen
    assert "b12_status" not in screen


def test_head_takes_one_line_and_b12lab_stops_quietly(tmp_path, big_export):
    status, screen = at_terminal(f"{B12LAB} batch {big_export} | head -1", tmp_path)
    assert status == 0, screen
    assert screen.count("line,patient_id,") == 1
    assert "Traceback" not in screen and "BrokenPipe" not in screen
    assert "b12lab: error" not in screen


def test_the_progress_display_is_on_stderr_and_the_data_in_the_file(tmp_path, big_export):
    status, screen = at_terminal(f"{B12LAB} batch {big_export} -o out.csv", tmp_path)
    assert status == 0, screen
    assert "b12lab batch" in screen and "━" in screen  # the bar was drawn on the screen
    assert "P000001" not in screen
    assert len((tmp_path / "out.csv").read_text().splitlines()) == 60_001


def test_without_a_terminal_on_stderr_nothing_but_the_data_reaches_the_screen(tmp_path):
    status, screen = at_terminal(f"{B12LAB} batch {EXAMPLES}/wide_us.csv 2> err.txt", tmp_path)
    errors = (tmp_path / "err.txt").read_text()
    assert status == 0, screen
    assert screen.replace("\r\n", "\n").startswith("line,patient_id,")
    assert "b12lab: 5 panels" in errors and "\x1b" not in errors  # no bar drawn into a file
    assert "b12lab:" not in screen


def test_ctrl_c_stops_with_130_no_traceback_and_no_partial_file(tmp_path, big_export):
    child = pexpect.spawn(
        sys.executable,
        ["-m", "b12lab", "batch", str(big_export), "-o", "out.csv"],
        cwd=str(tmp_path),
        env=environment(),
        encoding="utf-8",
        codec_errors="replace",
        dimensions=(24, 80),
        timeout=120,
    )
    child.expect("b12lab batch")  # the run is under way
    time.sleep(0.3)
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    screen = child.before
    assert child.exitstatus == 130, screen
    assert "interrupted by SIGINT" in screen
    assert "Traceback" not in screen and "KeyboardInterrupt" not in screen
    assert list(tmp_path.iterdir()) == []  # neither out.csv nor a temporary file


@pytest.mark.parametrize(("signal_name", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_terminating_signal_mid_run_leaves_no_file(tmp_path, big_export, signal_name, code):
    import signal

    child = pexpect.spawn(
        sys.executable,
        ["-m", "b12lab", "batch", str(big_export), "-o", "out.csv"],
        cwd=str(tmp_path),
        env=environment(),
        encoding="utf-8",
        codec_errors="replace",
        dimensions=(24, 80),
        timeout=120,
    )
    child.expect("b12lab batch")
    time.sleep(0.3)
    child.kill(getattr(signal, signal_name))
    child.expect(pexpect.EOF)
    child.close()
    assert (child.exitstatus, child.signalstatus) == (code, None), child.before[-500:]
    assert f"interrupted by {signal_name}" in child.before
    assert "Traceback" not in child.before
    assert list(tmp_path.iterdir()) == []


def test_the_text_report_in_a_file_has_no_color(tmp_path):
    status, screen = at_terminal(
        f"{B12LAB} interpret {EXAMPLES}/panel.yaml --format text > report.txt", tmp_path
    )
    report = (tmp_path / "report.txt").read_text()
    assert status == 0, screen
    assert "B12" in report and "\x1b" not in report


def test_no_color_keeps_the_terminal_report_colorless(tmp_path):
    command = f"{B12LAB} interpret {EXAMPLES}/panel.yaml"
    _, colored = at_terminal(command, tmp_path)
    _, plain = at_terminal(command, tmp_path, env=environment(NO_COLOR="1"))
    assert color_codes(colored)  # a terminal is given color ...
    assert "B12" in plain and not color_codes(plain)  # ... unless NO_COLOR is set


def test_no_color_keeps_the_progress_display_colorless(tmp_path, big_export):
    status, screen = at_terminal(
        f"{B12LAB} batch {big_export} -o out.csv", tmp_path, env=environment(NO_COLOR="1")
    )
    assert status == 0, screen
    assert "b12lab batch" in screen and not color_codes(screen)


@pytest.mark.parametrize("command", ["ranges", "rules", "rules plt-critical-low"])
def test_catalogs_wrap_to_the_terminal_width(tmp_path, command):
    status, screen = at_terminal(f"{B12LAB} {command}", tmp_path, env=environment(COLUMNS=None))
    lines = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen).replace("\r\n", "\n").split("\n")
    assert status == 0, screen
    assert max(len(line) for line in lines) <= 80
    assert all(line == line.rstrip() for line in lines)
    assert any(line.startswith("    ") for line in lines)  # continued under a hanging indent


@pytest.mark.parametrize(
    ("output_format", "shown"), [("ndjson", '"b12_status": "deficient"'), ("csv", ",deficient,")]
)
def test_batch_from_a_terminal_says_it_reads_until_ctrl_d(tmp_path, output_format, shown):
    child = pexpect.spawn(
        sys.executable,
        ["-m", "b12lab", "batch", "-", "--format", output_format],
        cwd=str(tmp_path),
        env=environment(),
        encoding="utf-8",
        dimensions=(24, 80),
        timeout=60,
    )
    child.expect("standard input until Ctrl-D")
    child.sendline("patient_id,b12")
    child.sendline("A,180 pg/mL")
    child.sendeof()  # once: the run ends there, as a typed export does
    child.expect(shown)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before


def test_from_a_pipe_the_progress_counts_rows(tmp_path, big_export):
    status, screen = at_terminal(f"cat {big_export} | {B12LAB} batch - -o out.csv", tmp_path)
    assert status == 0, screen
    assert "Ctrl-D" not in screen  # a pipe is not typed
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    assert re.search(r"b12lab batch reading .* [0-9][0-9,]* rows", plain), plain[-2000:]
    assert "%" not in plain and "/?" not in plain


@pytest.fixture(scope="module")
def unsorted_export(tmp_path_factory) -> Path:
    """An export whose patients' rows are spread through it: --timeline must group them."""
    lines = (EXAMPLES / "wide_us.csv").read_text().splitlines()
    header, rows = lines[0], [line for line in lines[1:] if line.split(",")[4]]
    path = tmp_path_factory.mktemp("unsorted") / "unsorted.csv"
    with path.open("w") as out:
        out.write(header + "\n")
        for number in range(24_000):
            row = rows[number % len(rows)].split(",")
            row[0] = f"P{number % 3000:05d}"
            row[1] = f"2026-{1 + number // 3000:02d}-01"
            out.write(",".join(row) + "\n")
    return path


def test_each_phase_of_an_out_of_core_run_shows_its_own_progress(tmp_path, unsorted_export):
    status, screen = at_terminal(
        f"{B12LAB} batch {unsorted_export} --timeline -f ndjson -o out.ndjson", tmp_path
    )
    assert status == 0, screen
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    order, at = [], 0
    for phase in ("checking the row order", "reading", "grouping 24,000 rows", "writing"):
        at = plain.find(f"b12lab batch {phase}", at)
        order.append(at)
    assert -1 not in order, plain[-3000:]  # each phase in turn, on a line of its own
    writing = plain[order[-1] :]
    shown = [int(n) for n in re.findall(r"writing [━╺╸]+\s+([0-9]+)%", writing)]
    assert any(0 < n < 100 for n in shown), writing[:1500]  # it moves: it is not stuck
    assert len((tmp_path / "out.ndjson").read_text().splitlines()) == 3000
