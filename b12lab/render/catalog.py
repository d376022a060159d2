"""`b12lab rules` and `b12lab ranges`: the catalogue and the limits in force."""

from __future__ import annotations

from typing import Any

from b12lab.model import DOMAINS, format_number
from b12lab.ranges import Ranges
from b12lab.rules import RULES, Rule


def ordered_rules() -> list[Rule]:
    return sorted(RULES.values(), key=lambda r: DOMAINS.index(r.domain))


RULE_COLUMNS = ("id", "domain", "severity", "title")
RANGE_COLUMNS = (
    "analyte",
    "unit",
    "applies_to",
    "reference",
    "low",
    "high",
    "source",
    "critical",
    "molar_mass_g_per_mol",
    "accepted_units",
)


def plain_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Columns aligned with two spaces, nothing cut, no trailing spaces (awk and cut read it)."""
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    lines = []
    for row in (header, *rows):
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


_KEEP = "\x00"  # a space inside a cell that must not break ("< 20, >= 1000")


def wrapped(line: str, width: int | None, indent: int = 4) -> list[str]:
    """`line` broken at spaces to `width` columns, each following line indented by
    `indent` (a hanging indent); words are never cut, no line ends with a space."""
    import textwrap

    if width is None or len(line) <= width:
        return [line.replace(_KEEP, " ").rstrip()]
    lead = len(line) - len(line.lstrip(" "))
    indent = indent if indent < width - 20 else 4
    parts = textwrap.wrap(
        line.strip(" "),
        width=width,
        initial_indent=" " * lead,
        subsequent_indent=" " * indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [part.replace(_KEEP, " ").rstrip() for part in parts] or [""]


def wrap_table(text: str, width: int | None, indent: int) -> str:
    """A plain table whose long rows continue under a hanging indent at `width`."""
    lines = [part for line in text.splitlines() for part in wrapped(line, width, indent)]
    return "\n".join(lines) + "\n"


def csv_text(header: tuple[str, ...], rows: list[tuple]) -> str:
    import csv
    import io

    from b12lab.render.rows import header_row, spreadsheet_safe

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header_row(header))
    writer.writerows(
        [spreadsheet_safe("" if cell is None else str(cell)) for cell in row] for row in rows
    )
    return buffer.getvalue()


def rule_rows() -> list[tuple[str, ...]]:
    return [(r.id, r.domain, r.severity, r.title) for r in ordered_rules()]


def rules_text(width: int | None = None) -> str:
    """The catalogue, one rule a line; with `width`, long titles continue under their column."""
    rows = rule_rows()
    title_column = sum(max(len(r[i]) for r in (RULE_COLUMNS, *rows)) + 2 for i in range(3))
    return wrap_table(plain_table(RULE_COLUMNS, rows), width, title_column)


def rules_csv(ranges: Ranges, rules: list[Rule]) -> str:
    rows = [
        (r.id, r.domain, r.severity, r.title, r.trigger, r.says, " ".join(r.sources)) for r in rules
    ]
    return csv_text((*RULE_COLUMNS, "trigger", "says", "sources"), rows)


def rules_markdown(rules: list[Rule]) -> str:
    """The catalogue as CLINICAL_RULES.md tables it: one table per domain, printed from
    the rules themselves (b12lab/rules.yaml and the rule modules)."""

    def cell(text: str) -> str:
        return " ".join(text.split()).replace("|", "\\|")

    lines: list[str] = []
    for domain in DOMAINS:
        in_domain = [r for r in rules if r.domain == domain]
        if not in_domain:
            continue
        if lines:
            lines.append("")
        lines += [
            f"### {domain}",
            "",
            "| id | severity | trigger | the finding says |",
            "|---|---|---|---|",
        ]
        for r in in_domain:
            sources = ", ".join(r.sources)
            says = f"{cell(r.says)} [{sources}]" if sources else cell(r.says)
            lines.append(f"| `{r.id}` | {r.severity} | {cell(r.trigger)} | {says} |")
    return "\n".join(lines) + "\n"


def rule_dict(rule: Rule, ranges: Ranges) -> dict[str, Any]:
    return {
        "id": rule.id,
        "domain": rule.domain,
        "severity": rule.severity,
        "title": rule.title,
        "trigger": rule.trigger,
        "says": rule.says,
        "next_steps": list(rule.next_steps),
        "sources": {s: ranges.sources.get(s, "") for s in rule.sources},
    }


def rule_detail(rule: Rule, ranges: Ranges, width: int = 80) -> str:
    """One rule explained, wrapped to `width` with hanging indents."""
    info = rule_dict(rule, ranges)
    lines = [rule.id]
    lines += wrapped(f"{rule.title}  (domain {rule.domain}, severity {rule.severity})", width)
    lines.append("")
    lines += wrapped(f"Fires when: {rule.trigger}", width)
    lines += wrapped(f"It says: {rule.says}", width)
    if rule.next_steps:
        lines.append("Next steps:")
        for step in rule.next_steps:
            lines += wrapped(f"  - {step}", width)
    lines.append("Sources:")
    for key, text in info["sources"].items():
        lines += wrapped(f"  [{key}] {text}", width)
    lines += wrapped("Thresholds are in reference_ranges.yaml; see 'b12lab ranges'.", width)
    return "\n".join(lines) + "\n"


def interval_text(low: float | None, high: float | None, decimals: int) -> str:
    """A reference interval no reader takes for a negative number: 148-664, >= 6.8, <= 5."""
    if low is not None and high is not None:
        return f"{format_number(low, decimals)}-{format_number(high, decimals)}"
    if low is not None:
        return f">= {format_number(low, decimals)}"
    if high is not None:
        return f"<= {format_number(high, decimals)}"
    return "none"


def critical_text(low: float | None, high: float | None, decimals: int) -> str:
    """Critical limits: below the low one, at or above the high one."""
    parts = []
    if low is not None:
        parts.append(f"< {format_number(low, decimals)}")
    if high is not None:
        parts.append(f">= {format_number(high, decimals)}")
    return ", ".join(parts)


def _applies_to(band) -> str:
    parts = []
    if band.sex:
        parts.append(band.sex)
    if band.trimester:
        parts.append(f"pregnancy T{band.trimester}")
    if band.age_min is not None or band.age_max is not None:
        low = format_number(band.age_min or 0, 2)
        high = "" if band.age_max is None else format_number(band.age_max, 2)
        parts.append(f"age {low}-{high}" if high else f"age >= {low}")
    return " ".join(parts) or "all"


def range_rows(ranges: Ranges) -> list[tuple]:
    """One row per reference interval of each analyte."""
    rows = []
    for key, spec in ranges.analytes.items():
        critical = critical_text(spec.critical_low, spec.critical_high, spec.decimals)
        mass = format_number(spec.molar_mass, 2) if spec.molar_mass else ""
        for band in spec.bands:
            rows.append(
                (
                    key,
                    spec.canonical_unit,
                    _applies_to(band),
                    interval_text(band.low, band.high, spec.decimals),
                    "" if band.low is None else format_number(band.low, 6),
                    "" if band.high is None else format_number(band.high, 6),
                    band.source,
                    critical,
                    mass,
                    ", ".join(ranges.units.accepted(key)),
                )
            )
    return rows


def ranges_csv(ranges: Ranges) -> str:
    return csv_text(RANGE_COLUMNS, range_rows(ranges))


def ranges_dict(ranges: Ranges) -> dict[str, Any]:
    analytes = {}
    for key, spec in ranges.analytes.items():
        analytes[key] = {
            "name": spec.name,
            "canonical_unit": spec.canonical_unit,
            "molar_mass_g_per_mol": spec.molar_mass,
            "units": ranges.units.accepted(key),
            "loinc": list(spec.loinc),
            "aliases": list(spec.aliases),
            "plausible": {"low": spec.plausible_low, "high": spec.plausible_high},
            "reference": [
                {
                    "sex": b.sex,
                    "age_min": b.age_min,
                    "age_max": b.age_max,
                    "low": b.low,
                    "high": b.high,
                    "source": b.source,
                    "high_source": b.high_source or b.source,
                    "pregnancy_trimester": b.trimester,
                }
                for b in spec.bands
            ],
            "critical": {
                "low": spec.critical_low,
                "high": spec.critical_high,
                "source": spec.critical_source,
            },
        }
    profiles = {
        name: {
            "title": p.title,
            **{
                k: {"value": getattr(p, k).value, "source": getattr(p, k).source}
                for k in (
                    "b12_deficient_below",
                    "b12_borderline_below",
                    "holotc_deficient_below",
                    "holotc_indeterminate_below",
                )
            },
            **(
                {
                    "minimum_age": {
                        "value": p.minimum_age.value,
                        "source": p.minimum_age.source,
                    }
                }
                if p.minimum_age is not None
                else {}
            ),
        }
        for name, p in ranges.profiles.items()
    }
    return {
        "files": list(ranges.origin),
        "version": ranges.version,
        "default_guideline": ranges.default_guideline,
        "guideline_profiles": profiles,
        "thresholds": {
            k: {"value": t.value, "source": t.source} for k, t in ranges.thresholds.items()
        },
        "analytes": analytes,
    }


def _shown_origin(origin: str) -> str:
    """A ranges file as the screen names it: the packaged file by its place in the
    package (its installed path can be longer than a terminal line), others as typed."""
    from pathlib import Path

    from b12lab.ranges import PACKAGED_RANGES

    if Path(origin) == PACKAGED_RANGES:
        return f"b12lab's built-in {PACKAGED_RANGES.name}"
    return origin


def ranges_text(ranges: Ranges, width: int | None = None) -> str:
    """The ranges in force as plain text: one line per interval, then profiles, thresholds;
    with `width` (a terminal's), long lines continue under a hanging indent."""
    shown = (0, 1, 2, 3, 6, 7, 8, 9)
    header = tuple(RANGE_COLUMNS[i] for i in shown)
    rows = [
        tuple(str(row[i]).replace(" ", _KEEP) if i != shown[-1] else row[i] for i in shown)
        for row in range_rows(ranges)
    ]
    first = max(len(str(row[0])) for row in (header, *rows)) + 2  # under the unit column
    origins = " + ".join(map(_shown_origin, ranges.origin))
    lines = wrapped("Reference ranges in force: " + origins, width)
    lines.append("")
    lines.append(wrap_table(plain_table(header, rows), width, first).rstrip("\n"))
    lines.append("")
    lines.append(f"Guideline profiles (default: {ranges.default_guideline})")
    for name, profile in ranges.profiles.items():
        lines.append(
            f"  {name}: B12 deficient < {format_number(profile.b12_deficient_below.value, 1)}, "
            f"borderline < {format_number(profile.b12_borderline_below.value, 1)} pmol/L; "
            f"holoTC deficient < {format_number(profile.holotc_deficient_below.value, 1)}, "
            "indeterminate < "
            f"{format_number(profile.holotc_indeterminate_below.value, 1)} pmol/L"
            + (
                f"; aged {format_number(profile.minimum_age.value, 0)} and over"
                if profile.minimum_age is not None
                else ""
            )
            + f"  [{profile.b12_deficient_below.source}]"
        )
    lines.append("")
    lines.append("Thresholds")
    for key, threshold in ranges.thresholds.items():
        lines.append(f"  {key}: {format_number(threshold.value, 2)}  [{threshold.source}]")
    lines.append("")
    lines.append("Sources")
    lines.extend(f"  [{key}] {text}" for key, text in ranges.sources.items())
    return wrap_table("\n".join(lines), width, indent=4)
