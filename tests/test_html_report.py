"""The HTML report: one self-contained, printable page; trend plots for a timeline."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest
from conftest import REPO, SAMPLES

TIMELINE = [SAMPLES / "patient_timeline.yaml", "--as-of", "2026-05-04"]
REGENERATE = (
    "b12lab interpret examples/patient_timeline.yaml --as-of 2026-05-04 -f html "
    "-o examples/report.html"
)


class Page(HTMLParser):
    """The tags, attributes and text of a page, as a browser would see them."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.chunks: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += [(tag, name, value or "") for name, value in attrs]

    def handle_data(self, data):
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.chunks).split())


def html_report(cli, tmp_path, *args, name="report.html") -> str:
    target = tmp_path / name
    result = cli("interpret", *args, "-f", "html", "-o", target)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    return target.read_text(encoding="utf-8")


def svgs(html: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", html, flags=re.S)


@pytest.mark.parametrize(
    "args",
    [
        [SAMPLES / "panel.yaml"],
        ["--b12", "180 pg/mL", "--platelets", "95", "--ferritin", "450 ng/mL", "--sex", "female"],
        TIMELINE,
    ],
    ids=["panel", "flags", "timeline"],
)
def test_the_page_carries_the_whole_report(cli, tmp_path, args):
    html = html_report(cli, tmp_path, *args)
    document = cli.json("interpret", *args, "-f", "json")
    page = Page(html)
    text = page.text
    conclusion = cli("interpret", *args, "-f", "text", env={"COLUMNS": "300"}).stdout
    assert conclusion.split("\n")[0].split(": ", 1)[-1] in text  # the same conclusion line
    for m in document["measurements"]:
        assert m["analyte"] in text and m["input"] in text
        assert m["unit"] in text
    for finding in document["findings"]:
        assert finding["title"] in text and f"[{finding['id']}]" in text
        assert " ".join(finding["detail"].split()) in text
        for step in finding["next_steps"]:
            assert " ".join(step.split()) in text
    for warning in document["warnings"]:
        assert " ".join(warning.split()) in text
    assert document["provenance"]["ranges_sha256"] in text
    assert "not a diagnosis" in text
    assert "@page { size: A4" in html


@pytest.mark.parametrize("args", [[SAMPLES / "panel.yaml"], TIMELINE], ids=["panel", "timeline"])
def test_nothing_on_the_page_is_fetched_from_elsewhere(cli, tmp_path, args):
    html = html_report(cli, tmp_path, *args)
    page = Page(html)
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(page.tags)
    for tag, name, value in page.attributes:
        if name in ("src", "href", "xlink:href", "action", "data"):
            assert value.startswith("#"), (tag, name, value)
    assert "@import" not in html
    assert re.findall(r"url\((?!#)", html) == []
    # the only addresses left are the SVG namespace names, which are never fetched
    addresses = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert addresses <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}


def test_every_value_from_the_input_is_escaped(cli, tmp_path):
    hostile = '<script>alert("x")</script><img src=http://evil.example/x>'
    html = html_report(cli, tmp_path, "--b12", "300", "--patient-id", hostile)
    page = Page(html)
    assert "script" not in page.tags and "img" not in page.tags
    assert "&lt;script&gt;" in html
    assert hostile in page.text


def test_a_timeline_has_one_plot_per_analyte_with_two_dated_values(cli, tmp_path):
    html = html_report(cli, tmp_path, *TIMELINE)
    history = cli.json("interpret", *TIMELINE, "-f", "json")["history"]
    plotted = [a for a, points in history.items() if len({p["date"] for p in points}) >= 2]
    assert plotted == ["b12", "platelets", "anc", "hemoglobin", "ferritin"]
    plots = svgs(html)
    assert len(plots) == len(plotted)
    titles = re.findall(r'<figure class="plot">\s*<h3>([^<]+)</h3>', html)
    assert [t.rsplit(" (", 1)[0] for t in titles] == [
        "Vitamin B12 (total cobalamin), serum",
        "Platelet count",
        "Absolute neutrophil count",
        "Hemoglobin",
        "Ferritin, serum",
    ]
    for svg in plots:
        assert "reference " in svg  # the shaded band is in the legend
        assert "B12 therapy start" in svg
    b12, ferritin = plots[0], plots[-1]
    assert "deficient &lt; 148" in b12 and "borderline &lt; 221" in b12
    assert "low in inflammation &lt; 70" in ferritin


def test_a_report_without_history_has_no_plot(cli, tmp_path):
    assert svgs(html_report(cli, tmp_path, SAMPLES / "panel.yaml")) == []


def test_the_nice_profile_draws_its_own_cut_offs(cli, tmp_path):
    html = html_report(cli, tmp_path, *TIMELINE, "--guideline", "nice")
    b12 = svgs(html)[0]
    assert "deficient &lt; 132.8" in b12 and "borderline &lt; 258.2" in b12


def test_the_plots_read_in_grayscale(cli, tmp_path):
    html = html_report(cli, tmp_path, *TIMELINE)
    plots = svgs(html)
    for svg in plots:
        for colour in re.findall(r"#([0-9a-fA-F]{6})\b", svg):
            red, green, blue = (colour[i : i + 2] for i in (0, 2, 4))
            assert red == green == blue, colour
    # the deficient and borderline cut-offs and the therapy start differ by dash pattern
    dashes = set(re.findall(r"stroke-dasharray: ([0-9.,\s]+)", plots[0]))
    assert len(dashes) >= 3, dashes


def test_two_runs_with_as_of_are_byte_identical(cli, tmp_path):
    first = html_report(cli, tmp_path, *TIMELINE, name="a.html")
    second = html_report(cli, tmp_path, *TIMELINE, name="b.html")
    assert first == second
    assert "2026-05-04" in first


def test_no_line_of_the_page_ends_with_a_space(cli, tmp_path):
    html = html_report(cli, tmp_path, *TIMELINE)
    assert [line for line in html.split("\n") if line.endswith((" ", "\t"))] == []


def test_html_to_a_terminal_or_pipe_is_just_the_page(cli):
    result = cli("interpret", SAMPLES / "panel.yaml", "-f", "html")
    assert result.exit_code == 0
    assert result.stdout.startswith("<!DOCTYPE html>")
    assert result.stderr == ""


def test_the_committed_example_is_what_b12lab_renders_today(cli, tmp_path):
    html = html_report(cli, tmp_path, *TIMELINE)
    committed = (REPO / "examples" / "report.html").read_text(encoding="utf-8")
    assert html == committed, f"examples/report.html is stale; regenerate it: {REGENERATE}"


def test_a_one_patient_text_report_loads_neither_jinja2_nor_matplotlib():
    script = (
        "import sys\n"
        "from b12lab.cli import app\n"
        "try:\n"
        f"    app(['interpret', {str(SAMPLES / 'panel.yaml')!r}, '-f', 'text'])\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('jinja2', 'matplotlib', 'markupsafe', 'numpy', 'PIL'))\n"
        "sys.stderr.write(repr(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "[]"
    assert "B12 DEFICIENT" in result.stdout


def test_html_is_one_of_the_interpret_formats(cli):
    result = cli("interpret", "--help", env={"COLUMNS": "200"})
    assert "html" in result.stdout
    bad = cli("interpret", "--b12", "300", "-f", "pdf")
    assert bad.exit_code == 2
    assert "html" in bad.stderr
    assert json.loads(cli("interpret", "--b12", "300", "-f", "json").stdout)["b12_status"]
