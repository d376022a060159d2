"""The HTML report in a real browser: headless chromium renders it to PNG and prints it to PDF.

Chromium must be on PATH (Debian's package `chromium`; .ci/run installs it).
Without it this test fails: a printable report that was never printed is not
tested.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from conftest import SAMPLES
from PIL import Image

A4_WIDTH_PT = 595.0  # 210 mm
CSS_PX_PER_MM = 96 / 25.4
A4_TEXT_WIDTH_PX = 182 * CSS_PX_PER_MM  # 210 mm less 14 mm margins each side


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "no chromium on PATH: the HTML report is checked in a real browser; install it with "
        "'apt-get install -y chromium' (as .ci/run does)",
        pytrace=False,
    )


def run_chromium(tmp_path, *args: str) -> None:
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={tmp_path / 'profile'}",
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The timeline example's report, its screenshot and its PDF."""
    from typer.testing import CliRunner

    from b12lab.cli import app

    folder = tmp_path_factory.mktemp("browser")
    page = folder / "report.html"
    args = ["interpret", str(SAMPLES / "patient_timeline.yaml"), "--as-of", "2026-05-04"]
    result = CliRunner().invoke(app, [*args, "-f", "html", "-o", str(page)])
    assert result.exit_code == 0, result.stderr
    png, pdf = folder / "report.png", folder / "report.pdf"
    run_chromium(
        folder,
        "--hide-scrollbars",
        "--window-size=1200,1600",
        f"--screenshot={png}",
        page.as_uri(),
    )
    run_chromium(folder, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri())
    return png, pdf


def test_the_screenshot_is_a_drawn_page_not_a_blank_one(rendered):
    png, _ = rendered
    with Image.open(png) as image:
        histogram = image.convert("L").histogram()  # pixels per gray level 0..255
    assert sum(1 for count in histogram if count) > 40  # text antialiasing, hatching, lines
    not_white = sum(histogram[:245]) / sum(histogram)
    assert 0.01 < not_white < 0.6


def test_the_drawn_content_is_no_wider_than_an_a4_page(rendered):
    png, _ = rendered
    with Image.open(png) as image:
        ink = image.convert("L").point(lambda p: 255 if p < 245 else 0)
        left, top, right, bottom = ink.getbbox()
    assert right - left <= A4_TEXT_WIDTH_PX + 2, (left, right)
    assert bottom - top > 600  # the page reached well below its header


def test_the_pdf_prints_on_a4(rendered):
    _, pdf = rendered
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    boxes = re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", data)
    assert boxes, "no page size in the PDF"
    for width, height in boxes:
        assert abs(float(width) - A4_WIDTH_PT) <= 1, width
        assert abs(float(height) - 842.0) <= 1, height
    pages = re.findall(rb"/Type\s*/Page\b(?!s)", data)
    assert len(pages) >= 1
