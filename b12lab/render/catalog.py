"""`b12lab rules` and `b12lab ranges`: the catalogue and the limits in force."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from b12lab.model import DOMAINS, format_number
from b12lab.ranges import Ranges
from b12lab.rules import RULES, Rule


def ordered_rules() -> list[Rule]:
    return sorted(RULES.values(), key=lambda r: DOMAINS.index(r.domain))


def rules_table() -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("id", "domain", "severity", "title"):
        table.add_column(column)
    for rule in ordered_rules():
        table.add_row(rule.id, rule.domain, rule.severity, rule.title)
    return table


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


def rule_detail(rule: Rule, ranges: Ranges) -> Group:
    info = rule_dict(rule, ranges)
    parts = [
        Text(f"{rule.id}", style="bold"),
        Text(f"{rule.title}  (domain {rule.domain}, severity {rule.severity})"),
        Text(""),
        Text("Fires when: ", style="bold") + Text(rule.trigger),
        Text("It says: ", style="bold") + Text(rule.says),
    ]
    if rule.next_steps:
        parts.append(Text("Next steps:", style="bold"))
        parts.extend(Text(f"  - {step}") for step in rule.next_steps)
    parts.append(Text("Sources:", style="bold"))
    parts.extend(Text(f"  [{key}] {text}") for key, text in info["sources"].items())
    parts.append(Text("Thresholds are in reference_ranges.yaml; see 'b12lab ranges'.", style="dim"))
    return Group(*parts)


def _band_text(low: float | None, high: float | None, decimals: int) -> str:
    low_text = "" if low is None else format_number(low, decimals)
    high_text = "" if high is None else format_number(high, decimals)
    return f"{low_text}-{high_text}"


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


def ranges_renderable(ranges: Ranges) -> Group:
    parts: list = [Text("Reference ranges in force: " + " + ".join(ranges.origin), style="bold")]
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("analyte", "unit", "reference", "critical", "molar mass", "accepted units"):
        table.add_column(column, overflow="fold")
    for key, spec in ranges.analytes.items():
        bands = []
        for band in spec.bands:
            who = " ".join(
                x
                for x in (
                    band.sex or "",
                    f"pregnancy T{band.trimester}" if band.trimester else "",
                    f"age {format_number(band.age_min or 0, 1)}-"
                    f"{'' if band.age_max is None else format_number(band.age_max, 1)}"
                    if band.age_min is not None or band.age_max is not None
                    else "",
                )
                if x
            )
            bands.append(
                f"{who + ': ' if who else ''}{_band_text(band.low, band.high, spec.decimals)}"
            )
        critical = (
            _band_text(spec.critical_low, spec.critical_high, spec.decimals)
            if spec.critical_source
            else ""
        )
        mass = f"{format_number(spec.molar_mass, 2)} g/mol" if spec.molar_mass else ""
        table.add_row(
            key,
            spec.canonical_unit,
            "\n".join(bands),
            critical,
            mass,
            ", ".join(ranges.units.accepted(key)),
        )
    parts.append(table)
    parts.append(
        Text("\nGuideline profiles (default: " + ranges.default_guideline + ")", style="bold")
    )
    for name, profile in ranges.profiles.items():
        parts.append(
            Text(
                f"  {name}: B12 deficient < {format_number(profile.b12_deficient_below.value, 1)}, "
                f"borderline < {format_number(profile.b12_borderline_below.value, 1)} pmol/L; "
                f"holoTC deficient < {format_number(profile.holotc_deficient_below.value, 1)}, "
                "indeterminate < "
                f"{format_number(profile.holotc_indeterminate_below.value, 1)} pmol/L"
                f"  [{profile.b12_deficient_below.source}]"
            )
        )
    parts.append(Text("\nThresholds", style="bold"))
    for key, threshold in ranges.thresholds.items():
        parts.append(Text(f"  {key}: {format_number(threshold.value, 2)}  [{threshold.source}]"))
    parts.append(Text("\nSources", style="bold"))
    parts.extend(Text(f"  [{key}] {text}") for key, text in ranges.sources.items())
    return Group(*parts)
