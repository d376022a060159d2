"""One sentence per domain: what the B12 status implies for platelets, neutrophils, ferritin.

The sentence is chosen from the value's flag, the B12 assessment and the
findings that fired; it never decides anything the rules did not.
"""

from __future__ import annotations

from b12lab.model import Implication
from b12lab.rules.base import Case, next_b12_markers

SHORT_NAMES = {"mma": "MMA", "homocysteine": "homocysteine", "holotc": "holoTC"}


def _hinge(case: Case, what: str) -> str:
    if case.b12.on_therapy_b12:
        return (
            f"On day {case.days_on_therapy} of B12 therapy, serum B12 reflects the replacement, "
            f"so it cannot say whether B12 deficiency explains {what}; recovery of the count "
            "on therapy will."
        )
    if case.b12.status == "unknown":
        return f"B12 was not measured, so whether B12 deficiency explains {what} is open."
    markers = next_b12_markers(case)
    confirm = " (" + " or ".join(SHORT_NAMES[m] for m in markers) + ")" if markers else ""
    return (
        f"B12 is borderline, so whether it explains {what} hinges on confirming B12 status"
        f"{confirm}."
    )


def _persisting(case: Case, name: str, analyte: str) -> str:
    return (
        f"{name} are still low on day {case.days_on_therapy} of B12 therapy, past day "
        f"{case.recovery_day(analyte)} by which they should have recovered: the expected "
        "response has not come, so look for another cause."
    )


def platelets(case: Case, fired: set[str]) -> str:
    flag = case.flags.get("platelets")
    if flag is None:
        return "Platelets were not measured."
    if case.is_low("platelets"):
        if case.persisting("platelets"):
            return _persisting(case, "Platelets", "platelets")
        if case.b12.low is True:
            return (
                "Low platelets fit the B12 deficiency (poor platelet production); they "
                "should recover within weeks of replacement."
            )
        if case.b12.low is False:
            return (
                "B12 is not low, so it does not explain the low platelets: look for another cause."
            )
        return _hinge(case, "the low platelets")
    if case.is_high("platelets"):
        if "plt-high-persistent-consider-et" in fired:
            return (
                "Thrombocytosis has outlasted the expected rebound: consider an essential "
                "thrombocythemia unmasked by B12 repletion."
            )
        if "plt-high-rebound-on-therapy" in fired:
            return (
                "High platelets on B12 therapy fit a transient rebound as the marrow "
                "recovers; recheck after the rebound window."
            )
        if case.b12.low is True:
            return (
                "B12 deficiency lowers platelets and never raises them: the high count "
                "needs a second explanation."
            )
        return "High platelets are not a B12 effect: look for a reactive cause."
    if "plt-recovered-on-therapy" in fired:
        return "Platelets have recovered on B12 therapy, the expected response."
    if case.b12.on_therapy_b12:
        return "Platelets are normal on B12 therapy."
    if case.b12.low is True:
        return "Platelets are normal: the B12 deficiency has not lowered them."
    return "Platelets are normal."


def neutrophils(case: Case, fired: set[str]) -> str:
    analyte = case.white_cells
    if analyte is None:
        return "Neutrophils were not measured (no ANC, or WBC with neutrophil %)."
    name = "Neutrophils" if analyte == "anc" else "White cells (no ANC)"
    if case.is_low(analyte):
        if case.persisting(analyte):
            return _persisting(case, name, analyte)
        if case.b12.low is True:
            return (
                f"{name} are low, which fits B12 deficiency (ineffective production); this "
                "reverses with replacement."
            )
        if case.b12.low is False:
            extra = (
                ", and a high B12 does not cause neutropenia" if case.b12.status == "high" else ""
            )
            return f"B12 is not low{extra}: the low count needs another cause."
        return _hinge(case, "the low count")
    if case.is_high(analyte):
        return f"{name} are raised; B12 status does not explain that."
    if "neut-recovered-on-therapy" in fired:
        return f"{name} have recovered on B12 therapy, the expected response."
    if case.b12.status == "high":
        return f"{name} are normal; a high B12 does not cause neutropenia."
    return f"{name} are normal."


def ferritin(case: Case, fired: set[str]) -> str:
    if not case.has("ferritin"):
        if case.b12.low is True:
            return (
                "Ferritin was not measured: with low B12 it is needed to find a combined "
                "or masked iron deficiency."
            )
        return "Ferritin was not measured."
    if "fer-falling-on-therapy" in fired:
        return (
            "Ferritin is falling on B12 therapy as new red cells use stored iron: watch for "
            "an iron deficiency the B12 deficiency had masked."
        )
    if case.is_low("ferritin"):
        if case.b12.low is True:
            return "Low ferritin beside low B12: a combined deficiency; both need treatment."
        if case.b12.low is False:
            return "Low ferritin with adequate B12: iron deficiency on its own."
        return _hinge(case, "more than iron deficiency")
    if case.inflammation and case.is_high("ferritin"):
        return (
            "High ferritin here reflects inflammation, not iron stores; B12 therapy will "
            "not lower it."
        )
    if "fer-low-in-inflammation" in fired:
        return "With inflammation, this ferritin is still compatible with iron deficiency."
    if "fer-high-iron-overload-pattern" in fired:
        return (
            "High ferritin with high transferrin saturation is the pattern of iron overload, "
            "not a B12 effect."
        )
    if case.b12.low is True and not case.marrow_judged_as_measured:
        return (
            "Ferritin reads normal or high while B12 is low: it can hide an iron deficiency "
            "that appears once B12 therapy starts."
        )
    if case.is_high("ferritin"):
        if case.b12.low is False:
            return "High ferritin is not a B12 effect; B12 supplements will not lower it."
        return _hinge(case, "the high ferritin")
    return "Ferritin is normal; B12 status does not change its reading."


SUMMARIES = {"platelets": platelets, "neutrophils": neutrophils, "ferritin": ferritin}
FLAG_ANALYTE = {
    "platelets": ("platelets",),
    "neutrophils": ("anc", "wbc"),
    "ferritin": ("ferritin",),
}


def implications(
    case: Case, fired_by_domain: dict[str, list[str]], summaries: bool = True
) -> dict[str, Implication]:
    """Each domain's flag, findings and (unless `summaries` is false) its sentence."""
    fired = {rule_id for ids in fired_by_domain.values() for rule_id in ids}
    result = {}
    for domain, summarize in SUMMARIES.items():
        flag = next((case.flags[a] for a in FLAG_ANALYTE[domain] if a in case.flags), None)
        result[domain] = Implication(
            flag=flag,
            summary=summarize(case, fired) if summaries else "",
            findings=tuple(fired_by_domain.get(domain, ())),
        )
    return result
