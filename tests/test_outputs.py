"""Outputs never destroy a file; interruptions and closed streams end cleanly."""

from __future__ import annotations

import csv
import os
import signal
import stat
import subprocess
import sys
import threading
import time

import pytest
from conftest import SAMPLES, one_clear_line

EXPORT = SAMPLES / "wide_us.csv"


def b12lab(*args, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "b12lab", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        **kwargs,
    )


@pytest.fixture
def export(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(EXPORT.read_bytes())
    return path


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("-o", "{in}"), "output {in} is the same file as the input export {in}"),
        (("--errors", "{in}"), "errors file {in} is the same file as the input export"),
        (("-o", "{d}/x.csv", "--errors", "{d}/x.csv"), "is the same file as the output"),
        (("-o", "{d}/link.csv"), "is the same file as the input export"),
        (("--errors", "-"), "'-' would mix its rows into the data on standard output"),
        (("--ranges", "{d}/lab.yaml", "-o", "{d}/lab.yaml"), "same file as the ranges file"),
    ],
)
def test_outputs_naming_an_input_or_each_other_are_refused_before_reading(
    cli, export, tmp_path, args, words
):
    (tmp_path / "link.csv").symlink_to(export)
    (tmp_path / "lab.yaml").write_text("version: lab\n")
    before = export.read_bytes()
    filled = [a.format(**{"in": export, "d": tmp_path}) for a in args]
    result = cli("batch", export, *filled)
    assert result.exit_code == 2
    assert words.format(**{"in": export}) in one_clear_line(result)
    assert export.read_bytes() == before
    assert (tmp_path / "lab.yaml").read_text() == "version: lab\n"
    assert not (tmp_path / "x.csv").exists()


def test_stdin_that_is_the_output_file_is_refused(export):
    before = export.read_bytes()
    with export.open("rb") as stdin:
        result = b12lab("batch", "-", "-o", export, stdin=stdin)
    assert result.returncode == 2
    assert "same file as the input export standard input" in result.stderr
    assert export.read_bytes() == before


def test_errors_to_stdout_is_fine_when_the_data_goes_to_a_file(cli, export, tmp_path):
    result = cli("batch", export, "-o", tmp_path / "out.csv", "--errors", "-")
    assert result.exit_code == 0
    assert result.stdout.startswith("line,column,value,reason")


def test_a_fifo_is_written_in_place_never_replaced(export, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    result = b12lab("batch", export, "-o", fifo)
    reader.join(timeout=30)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert received[0].startswith("line,patient_id")
    assert len(received[0].splitlines()) == 6


@pytest.mark.parametrize("target", ["/dev/null", "/dev/stdout"])
def test_devices_and_descriptor_links_are_written_in_place(export, target):
    before = os.stat("/dev/null")
    result = b12lab("batch", export, "-o", target)
    assert result.returncode == 0, result.stderr
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino
    assert stat.S_IMODE(after.st_mode) == stat.S_IMODE(before.st_mode)
    if target == "/dev/stdout":
        assert len(result.stdout.splitlines()) == 6


def test_dev_stdout_onto_a_regular_file_appends_rather_than_overwrites(export, tmp_path):
    log = tmp_path / "log.txt"
    log.write_text("kept\n")
    with log.open("a") as stdout:
        subprocess.run(
            [sys.executable, "-m", "b12lab", "batch", str(export), "-o", "/dev/stdout"],
            stdout=stdout,
            stderr=subprocess.DEVNULL,
            check=True,
        )
    assert log.read_text().startswith("kept\nline,patient_id")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o600])
def test_a_replaced_file_keeps_its_permission_bits(cli, export, tmp_path, mode):
    out = tmp_path / "out.csv"
    out.write_text("old\n")
    out.chmod(mode)
    assert cli("batch", export, "-o", out).exit_code == 0
    assert stat.S_IMODE(out.stat().st_mode) == mode
    assert out.read_text().startswith("line,")


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_file_follows_the_umask(export, tmp_path, umask, mode):
    out = tmp_path / "new.csv"
    result = subprocess.run(
        [sys.executable, "-m", "b12lab", "batch", str(export), "-o", str(out)],
        capture_output=True,
        check=False,
        preexec_fn=lambda: os.umask(umask),
    )
    assert result.returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == mode


def test_a_symlinked_output_keeps_its_link_and_updates_the_target(cli, export, tmp_path):
    real = tmp_path / "results-2026.csv"
    real.write_text("old\n")
    link = tmp_path / "results.csv"
    link.symlink_to(real)
    assert cli("batch", export, "-o", link).exit_code == 0
    assert link.is_symlink()
    assert real.read_text().startswith("line,")


def big_export(tmp_path):
    export = tmp_path / "big.csv"
    export.write_text(
        "patient_id,b12 (pmol/L),platelets\n"
        + "".join(f"P{n},{100 + n % 700},{50 + n % 500}\n" for n in range(300_000))
    )
    return export


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_signal_removes_the_temporary_file_and_keeps_the_previous_output(tmp_path, name):
    export = big_export(tmp_path)
    out = tmp_path / "out.ndjson"
    out.write_text("the previous good result\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "b12lab", "batch", str(export), "-o", str(out), "-f", "ndjson"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 30
    while time.time() < deadline and not any(p.name.endswith(".tmp") for p in tmp_path.iterdir()):
        time.sleep(0.02)
    time.sleep(0.2)
    signum = getattr(signal, name)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 128 + signum
    assert stderr.splitlines() == [f"b12lab: error: interrupted by {name}; {out} left as it was"]
    assert out.read_text() == "the previous good result\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv", "out.ndjson"]


@pytest.mark.parametrize(
    ("shell", "code", "words"),
    [
        ("{b} interpret --b12 300 -f json >&-", 2, "standard output is closed"),
        ("{b} batch - <&-", 2, "standard input is closed"),
        ("{b} interpret - <&-", 2, "standard input is closed"),
        ("{b} interpret --b12 abc 2>&-", 2, None),
        ("{b} batch {export} -o {out} >&-", 0, None),
    ],
)
def test_closed_standard_streams_have_a_clear_exit_code(export, tmp_path, shell, code, words):
    command = shell.format(b=f"{sys.executable} -m b12lab", export=export, out=tmp_path / "out.csv")
    result = subprocess.run(
        ["sh", "-c", "exec " + command], capture_output=True, text=True, check=False
    )
    assert result.returncode == code
    assert "Traceback" not in result.stderr
    if words:
        assert words in result.stderr


def test_a_read_error_is_not_called_a_write_error(tmp_path):
    # stdin opened for writing only: every read fails with EBADF
    command = f"exec {sys.executable} -m b12lab batch - 0>{tmp_path / 'write-only'}"
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "b12lab: error: cannot read export standard input: Bad file descriptor; "
        "check the file and the disk it is on"
    ]


def test_a_full_disk_names_the_output_file(export):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    result = b12lab("batch", export, "-o", "/dev/full")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "b12lab: error: cannot write output /dev/full: No space left on device; "
        "free space on the disk or choose another output"
    ]


def test_output_rows_survive_the_round_trip(cli, export, tmp_path):
    out = tmp_path / "out.csv"
    assert cli("batch", export, "-o", out).exit_code == 0
    assert len(list(csv.DictReader(out.open()))) == 5


def test_batch_csv_is_the_same_bytes_to_a_pipe_a_file_a_device_and_in_process(
    cli, export, tmp_path
):
    piped = subprocess.run(
        [sys.executable, "-m", "b12lab", "batch", str(export)], capture_output=True, check=False
    )
    assert piped.returncode == 0, piped.stderr
    written = tmp_path / "out.csv"
    assert b12lab("batch", export, "-o", written).returncode == 0
    device = tmp_path / "device.csv"
    with device.open("wb") as target:  # /dev/stdout onto a file: written in place
        ran = subprocess.run(
            [sys.executable, "-m", "b12lab", "batch", str(export), "-o", "/dev/stdout"],
            stdout=target,
            stderr=subprocess.PIPE,
            check=False,
        )
    assert ran.returncode == 0, ran.stderr
    in_process = cli("batch", export)
    assert in_process.exit_code == 0
    assert piped.stdout.count(b"\n") == 6  # the header and five panels
    assert piped.stdout == written.read_bytes() == device.read_bytes()
    assert piped.stdout == in_process.stdout_bytes
