"""Every hint names something that exists, and `convert` reads as `interpret` does.

An error's fix may name an option only if the command that printed it has that
option; the README's exit-code table lists every code b12lab can return.
"""

from __future__ import annotations

import ast
import re
import signal
from pathlib import Path

import pytest
import typer.main

from b12lab import __version__
from b12lab.cli import EXIT_BAD_ROWS, EXIT_INPUT, EXIT_INTERNAL, EXIT_OK, EXIT_URGENT, app
from tests.conftest import REPO, SAMPLES

OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
COMMANDS = typer.main.get_command(app).commands


def options_of(command: str) -> set[str]:
    names = set()
    for param in COMMANDS[command].params:
        names.update(o for o in param.opts + param.secondary_opts if o.startswith("--"))
    return names | {"--help"}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


PANEL_WITH_SLASH_DATE = "b12: 180 pg/mL\ndate: 03/04/2026\n"
EXPORT = "patient_id,collected,age,b12,platelets\n"


def failing_runs(tmp_path: Path) -> list[tuple[str, list[str]]]:
    """Invocations that fail, each naming the command it is."""
    panel = write(tmp_path, "slash.yaml", PANEL_WITH_SLASH_DATE)
    ambiguous = write(tmp_path, "dates.csv", EXPORT + "A,03/04/2026,50,180 pg/mL,200\n")
    bad_age = write(tmp_path, "age.csv", EXPORT + "A,2026-04-03,old,180 pg/mL,200\n")
    no_unit = write(tmp_path, "unit.csv", EXPORT + "A,2026-04-03,50,180,200\n")
    wide = str(SAMPLES / "wide_us.csv")
    return [
        ("interpret", ["--b12", "180", "--date", "03/04/2026"]),
        ("interpret", [str(panel)]),
        ("interpret", ["--b12", "180", "--as-of", "03/04/2026"]),
        ("interpret", ["--b12", "180", "--age", "old"]),
        ("interpret", ["--b12", "abc"]),
        ("interpret", ["--b12", "180 mg"]),
        ("interpret", ["--b12", "180", "--sex", "x"]),
        ("interpret", ["--b12", "180", "--sex", "male", "--pregnancy-trimester", "2"]),
        ("interpret", ["--b12", "180", "--date-format", "YYYY/DD"]),
        ("interpret", []),
        ("interpret", ["--input-format", "csv", wide]),
        ("batch", [str(ambiguous)]),
        ("batch", [str(bad_age)]),
        ("batch", [str(no_unit), "--strict"]),
        ("batch", [wide, "--unit", "b12"]),
        ("batch", [wide, "--map", "x"]),
        ("batch", [wide, "--plan", "--format", "ndjson"]),
        ("batch", [wide, "--keep", "sex", "--format", "fhir-ndjson"]),
        ("batch", [wide, "--as-of", "03/04/2026"]),
        ("batch", [str(SAMPLES / "panel.yaml"), "--input-format", "yaml"]),
        ("convert", ["45 ng/dL"]),
        ("convert", ["300"]),
        ("convert", ["300 pg/mL", "--analyte", "nothing"]),
        ("convert", ["300 pg/mL", "--to", "mg"]),
        ("rules", ["no-such-rule"]),
        ("ranges", ["--ranges", str(tmp_path / "missing.yaml")]),
    ]


def test_every_option_a_hint_names_belongs_to_the_command_that_printed_it(cli, tmp_path):
    checked = 0
    for command, args in failing_runs(tmp_path):
        result = cli(command, *args)
        said = result.stderr + (result.stdout if command == "batch" else "")
        assert result.exit_code in (EXIT_INPUT, EXIT_BAD_ROWS), (command, args, said)
        named = set(OPTION.findall(said))
        missing = named - options_of(command)
        assert not missing, f"b12lab {command} {' '.join(args)} names {missing}: {said}"
        checked += len(named)
    assert checked >= 15  # the hints above do name options


def fix_texts() -> list[tuple[str, int, str]]:
    """Every `fix=` argument in the package: (file, line, source text)."""
    found = []
    for path in sorted((REPO / "b12lab").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "fix":
                found.append((path.name, node.value.lineno, ast.unparse(node.value)))
    return found


def test_every_option_named_in_a_fix_is_an_option_of_b12lab():
    everything = set().union(*(options_of(name) for name in COMMANDS))
    everything |= {"--version", "--install-completion", "--show-completion", "--compile"}
    named = [(f, line, o) for f, line, text in fix_texts() for o in OPTION.findall(text)]
    assert len(named) >= 15
    unknown = [(f, line, o) for f, line, o in named if o not in everything]
    assert not unknown


def test_interpret_reads_a_slash_date_with_date_format(cli, tmp_path):
    panel = write(tmp_path, "slash.yaml", PANEL_WITH_SLASH_DATE)
    report = cli.json("interpret", panel, "--date-format", "DD/MM/YYYY", "-f", "json")
    assert report["panel_date"] == "2026-04-03"
    flags = cli.json(
        "interpret", "--b12", "180 pg/mL", "--date", "03/04/2026", "--date-format", "MM/DD/YYYY"
    )
    assert flags["panel_date"] == "2026-03-04"


@pytest.mark.parametrize(
    ("args", "printed"),
    [
        (["45 ng/dL", "--to", "ug/L", "--analyte", "ferritin"], "0.45 ug/L"),
        (["45 ng/dL", "--analyte", "ferritin"], "0.45 ug/L"),
        (["300 pg/mL", "--to", "pmol/L"], "221.3 pmol/L"),
        (["300 pg/mL", "--to", "pmol/l"], "221.3 pmol/L"),
        (["300 pg/mL", "--to", "PMOL/L"], "221.3 pmol/L"),
        (["300 pg/mL"], "221.3 pmol/L"),
        (["300", "pg/mL"], "221.3 pmol/L"),
        (["221.3 pmol/L", "--to", "pg/mL", "--analyte", "b12"], "300 pg/mL"),
        (["1.2 K/uL", "--to", "x10^9/L"], "1.2 x10^9/L"),
        (["9.8 g/dL"], "98 g/L"),
    ],
)
def test_convert_prints_a_figure_that_is_right(cli, args, printed):
    result = cli("convert", *args)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == printed


def test_convert_takes_every_unit_interpret_reads(cli):
    report = cli.json("interpret", "--ferritin", "45 mcg/dL", "-f", "json")
    (read,) = [m for m in report["measurements"] if m["analyte"] == "ferritin"]
    assert read["input"] == "45 mcg/dL"  # interpret reads it ...
    converted = cli.json("convert", "45 mcg/dL", "--analyte", "ferritin", "-f", "json")
    assert converted == {"value": 450, "unit": "ug/L", "analyte": "ferritin"}  # ... so does this
    assert read["value"] == pytest.approx(converted["value"])


def test_convert_shows_a_value_interpret_refuses_and_says_so(cli):
    refused = cli("interpret", "--ferritin", "45 ng/dL")
    assert refused.exit_code == 2 and "did you mean 45 ng/mL" in refused.stderr
    result = cli("convert", "45 ng/dL", "--analyte", "ferritin")
    assert result.exit_code == 0
    assert result.stdout.strip() == "0.45 ug/L"
    assert "did you mean 45 ng/mL" in result.stderr and "interpret refuses it" in result.stderr


def test_convert_still_asks_when_the_unit_fits_several_analytes(cli):
    result = cli("convert", "450 ng/mL")
    assert result.exit_code == 2
    assert "folate, ferritin" in result.stderr and "--analyte" in result.stderr


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_the_version_is_printed(cli, flag):
    result = cli(flag)
    assert result.exit_code == 0
    assert result.stdout.strip() == f"b12lab {__version__}"


def test_batch_text_is_a_table_to_read(cli):
    result = cli("batch", SAMPLES / "wide_us.csv", "--format", "text", env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["line", "patient", "date", "B12", "severity"]
    assert lines[1].split()[:5] == ["2", "S001", "2026-08-03", "deficient", "urgent"]
    assert all(len(line) <= 80 and line == line.rstrip() for line in lines)
    findings = [line for line in lines if line.startswith("       ")]  # a hanging indent
    assert any("plt-low-consistent-with-b12" in line for line in findings)
    assert "," not in lines[0] and not lines[1].startswith("line,")


def exit_code_table() -> set[int]:
    text = (REPO / "README.md").read_text()
    start = text.index("| code | meaning |")
    codes = set()
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        codes.add(int(line.split("|")[1].strip()))
    return codes


def test_every_exit_code_is_in_the_readme_table():
    from b12lab.output import _SIGNALS

    returned = {EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_BAD_ROWS, EXIT_URGENT}
    returned |= {128 + number for number in _SIGNALS}
    assert {130, 143} <= returned
    assert returned <= exit_code_table()
    assert signal.SIGTERM in _SIGNALS
