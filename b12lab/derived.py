"""Values b12lab derives when a panel lacks them, in one place: ANC from WBC x
neutrophil %, and eGFR from serum creatinine, age and sex (the ranges file's
equation, `derivations.egfr_from_creatinine`).

Every part of b12lab that asks "will this panel get a derived value?" (the
reading layer under --strict, the export plan's notes, the decision keys of a
batch, their columnar form) asks it here, of the same `Derivation`; the engine
derives the values here, before any rule runs. A derived value is exact (never
judged by its place among cut points) and the report says it was derived.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import NamedTuple

from b12lab.model import Measurement, Panel, format_number
from b12lab.ranges import Ranges

EGFR_EQUATION = "egfr_from_creatinine"


class Derivation(NamedTuple):
    """`analyte`, derived from the measured `inputs` when it was not itself reported."""

    analyte: str
    inputs: tuple[str, ...]

    def applies(self, present: Collection[str]) -> bool:
        """Whether a panel with these analytes gets the value derived."""
        return self.analyte not in present and all(a in present for a in self.inputs)


ANC = Derivation("anc", ("wbc", "neutrophil_pct"))
EGFR = Derivation("egfr", ("creatinine",))  # with the patient's age and sex


def egfr_equation(ranges: Ranges) -> dict | None:
    """The ranges file's eGFR equation (None: eGFR is never derived)."""
    return ranges.derivations.get(EGFR_EQUATION)


def derive(panel: Panel, ranges: Ranges) -> tuple[Panel, list[str]]:
    """The panel with every value it lacks and can be derived, and a note for each
    (or why it was not derived)."""
    panel, notes = derive_anc(panel, ranges)
    panel, egfr_notes = derive_egfr(panel, ranges)
    return panel, notes + egfr_notes


def derive_anc(panel: Panel, ranges: Ranges) -> tuple[Panel, list[str]]:
    """ANC from WBC x neutrophil % when ANC itself was not reported."""
    if not ANC.applies(panel.measurements):
        return panel, []
    wbc, pct = (panel.measurements[analyte] for analyte in ANC.inputs)
    if wbc.censored or pct.censored:
        return panel, ["anc: not derived, because WBC or neutrophil % is censored"]
    spec = ranges.analytes["anc"]
    value = wbc.value * pct.value / 100
    anc = Measurement(
        analyte="anc",
        value=value,
        unit=spec.canonical_unit,
        input=f"WBC {wbc.shown()} x {format_number(pct.value, 1)}% neutrophils",
        derived=True,
        decimals=spec.decimals,
    )
    measurements = {**panel.measurements, "anc": anc}
    note = (
        f"anc: derived from WBC x neutrophil % = {format_number(value, spec.decimals)} "
        f"{spec.canonical_unit}"
    )
    return replace(panel, measurements=measurements), [note]


def derive_egfr(panel: Panel, ranges: Ranges) -> tuple[Panel, list[str]]:
    """eGFR from serum creatinine, age and sex (the data file's equation) when none is given."""
    equation = egfr_equation(ranges)
    if not EGFR.applies(panel.measurements) or equation is None:
        return panel, []
    creatinine = panel.measurements["creatinine"]
    name = equation["equation"]
    if creatinine.censored:
        return panel, [f"egfr: not derived ({name}), because creatinine is censored"]
    if panel.sex is None or panel.age is None:
        return panel, [f"egfr: not derived from creatinine ({name} needs age and sex)"]
    if panel.age < equation["minimum_age"]:
        return panel, [f"egfr: not derived from creatinine ({name} is for adults)"]
    sex = panel.sex
    scr = creatinine.value / ranges.units.factor("creatinine", equation["creatinine_unit"])
    ratio = scr / equation[f"kappa_{sex}"]
    value = (
        equation["multiplier"]
        * min(ratio, 1.0) ** equation[f"alpha_{sex}"]
        * max(ratio, 1.0) ** equation["exponent_above_kappa"]
        * equation["age_factor"] ** panel.age
        * (equation["female_factor"] if sex == "female" else 1.0)
    )
    spec = ranges.analytes["egfr"]
    egfr = Measurement(
        analyte="egfr",
        value=round(value, 1),
        unit=spec.canonical_unit,
        input=f"{name} from creatinine {creatinine.shown()}, age {format_number(panel.age, 0)}, "
        f"{sex}",
        derived=True,
        decimals=spec.decimals,
    )
    note = (
        f"egfr: derived from creatinine by {name} = {format_number(value, spec.decimals)} "
        f"{spec.canonical_unit}"
    )
    return replace(panel, measurements={**panel.measurements, "egfr": egfr}), [note]
