"""Ferritin: B12 deficiency can hide an iron deficiency behind a normal ferritin."""

from __future__ import annotations

from b12lab.rules.base import (
    AskTests,
    Case,
    Fired,
    Missing,
    Step,
    above,
    b12_unresolved,
    below,
    rule,
)


def _ferritin_evidence(case: Case) -> dict[str, str]:
    return {
        "ferritin": case.shown("ferritin"),
        "ferritin_reference": (
            f"{case.limit('ferritin', case.limits.low('ferritin'))} - "
            f"{case.limit('ferritin', case.limits.high('ferritin'))}"
        ),
    }


def earlier_ferritin(case: Case):
    """The highest uncensored-from-below ferritin of an earlier panel, with its date."""
    best = None
    for panel in case.history:
        ferritin = panel.get("ferritin")
        if ferritin is None or ferritin.censored == "<":
            continue
        if best is None or ferritin.value > best[1].value:
            best = (panel.date, ferritin)
    return best


@rule(
    "fer-low-combined-deficiency",
    reads=("ferritin", "b12", "tsat"),
    domain="ferritin",
    severity="advisory",
    title="Combined iron and B12 deficiency",
    trigger="ferritin below its lower limit and B12 low",
    says="Both the building block (iron) and the cofactor (B12) for red cells are short; "
    "treating only one limits the response. Treat both: B12 first or together, and do not "
    "delay iron when the iron deficiency is clear (low ferritin, low TSAT).",
    next_steps=(
        "Treat both: B12 first or together with iron; do not delay iron when the iron "
        "deficiency is clear (low ferritin and low transferrin saturation).",
        "Monitor iron (ferritin, transferrin saturation) once B12 therapy starts, as new "
        "red-cell production uses iron.",
        "Look for a shared cause (e.g. atrophic gastritis, coeliac disease, diet).",
    ),
    sources=("solmaz-2015-iron", "bsh-2014-b12", "who-2020-ferritin"),
)
def fer_low_combined(case: Case) -> Fired | Missing | None:
    if not case.is_low("ferritin"):
        return None
    if case.b12.low is None:
        return b12_unresolved(case)
    if not case.b12.low:
        return None
    evidence = {**_ferritin_evidence(case), "b12": case.b12_shown}
    steps: tuple[str, ...] = ()
    note = ""
    if case.is_low("tsat"):
        evidence["tsat"] = case.shown("tsat")
        note = (
            f" Transferrin saturation {case.shown('tsat')} is low too: the iron deficiency is "
            "clear."
        )
        steps = ("Start iron now, alongside B12: the iron deficiency is clear.",)
    return Fired(
        f"Ferritin {case.shown('ferritin')} is low and B12 is {case.b12.status} "
        f"({case.b12_shown}).{note}",
        evidence,
        next_steps=steps,
        missing=() if case.has_any("tsat") else ("tsat",),
    )


@rule(
    "fer-may-mask-iron-deficiency",
    reads=("ferritin", "crp", "b12", "tsat"),
    domain="ferritin",
    severity="advisory",
    title="Normal or high ferritin may be hiding an iron deficiency",
    trigger="ferritin normal or high, B12 low, no inflammation (CRP not above its limit), and "
    "not when the overload pattern may fire (on therapy with B12 repleted or past the "
    "persistence window)",
    says="Ineffective red-cell production in B12 deficiency stores iron instead of using "
    "it, so ferritin can read normal or high while iron is short. Once B12 therapy restarts "
    "effective production, ferritin falls and a hidden iron deficiency can appear.",
    next_steps=(
        "Recheck ferritin and iron studies (transferrin saturation) 4-8 weeks after starting B12.",
        "Be ready to add iron if ferritin falls below its lower limit.",
    ),
    sources=("solmaz-2015-iron", "green-2017-megaloblastic"),
)
def fer_may_mask(case: Case) -> Fired | Missing | None:
    if not case.has("ferritin") or case.is_low("ferritin") or case.inflammation:
        return None
    if case.marrow_judged_as_measured:
        return None  # fer-high-iron-overload-pattern may fire now
    if case.b12.low is None:
        return b12_unresolved(case)
    if not case.b12.low:
        return None
    evidence = {**_ferritin_evidence(case), "b12": case.b12_shown}
    note = ""
    missing: tuple[str, ...] = ()
    if case.has("crp"):
        evidence["crp"] = case.shown("crp")
    else:
        note = " CRP was not measured; inflammation would also raise ferritin."
        missing = ("crp",)
    steps: tuple[str, ...] = ()
    if case.is_high("ferritin") and above(case.get("tsat"), case.limits.high("tsat")):
        evidence["tsat"] = case.shown("tsat")
        note += (
            f" Transferrin saturation {case.shown('tsat')} is high too: ineffective red-cell "
            "production raises both, so this is not called iron overload while B12 is low."
        )
        steps = (
            "Recheck ferritin and transferrin saturation after B12 repletion; consider an "
            "iron-overload work-up (HFE) only if both stay high.",
        )
    return Fired(
        f"Ferritin {case.shown('ferritin')} reads {case.flags.get('ferritin')} beside B12 "
        f"{case.b12.status} ({case.b12_shown}).{note}",
        evidence,
        next_steps=steps,
        missing=missing,
    )


@rule(
    "fer-falling-on-therapy",
    reads=("ferritin", "tsat"),
    domain="ferritin",
    severity="advisory",
    title="Ferritin falling on B12 therapy",
    trigger="on B12 therapy, and ferritin fallen from an earlier panel's value by more than "
    "the real-fall share, or below its lower limit",
    says="Expected as new red cells draw on stored iron; an iron deficiency that B12 "
    "deficiency had masked may now show.",
    next_steps=(
        AskTests(
            "Check {tests} and consider iron replacement.",
            {"tsat": "transferrin saturation"},
            also=("serum iron",),
        ),
        "Keep monitoring ferritin until the blood count has recovered.",
    ),
    sources=("solmaz-2015-iron", "bsh-2014-b12"),
)
def fer_falling(case: Case) -> Fired | Missing | None:
    if not case.on_therapy or not case.has("ferritin"):
        return None
    ferritin = case.get("ferritin")
    days = case.days_on_therapy
    earlier = earlier_ferritin(case)
    real_fall = 1 - case.limits.threshold("ferritin_real_fall_percent") / 100
    if earlier is not None and below(ferritin, earlier[1].value * real_fall):
        date, before = earlier
        return Fired(
            f"Ferritin fell from {before.shown()} on "
            f"{date.isoformat() if date else 'an earlier panel'} "
            f"to {ferritin.shown()} on day {days} of B12 therapy.",
            {
                "ferritin": ferritin.shown(),
                "earlier_ferritin": f"{before.shown()} on {date.isoformat() if date else '?'}",
                "days_on_therapy": str(days),
            },
        )
    if case.is_low("ferritin"):
        return Fired(
            f"Ferritin {ferritin.shown()} is low on day {days} of B12 therapy.",
            {**_ferritin_evidence(case), "days_on_therapy": str(days)},
        )
    return None


@rule(
    "fer-high-inflammation",
    reads=("ferritin", "crp", "tsat"),
    domain="ferritin",
    severity="advisory",
    title="High ferritin with inflammation: not a measure of iron stores",
    trigger="ferritin above its upper limit and CRP above its limit",
    says="Ferritin is an acute-phase reactant: with inflammation it no longer reflects iron "
    "stores, and B12 therapy will not lower it. Inflammation can raise B12 too.",
    next_steps=(
        "Treat and then recheck once inflammation has settled.",
        Step(
            "Use transferrin saturation to judge iron availability meanwhile.",
            asks=("tsat",),
            given="Judge iron availability meanwhile by the transferrin saturation given here.",
        ),
    ),
    sources=("who-2020-ferritin", "stabler-2013-b12"),
)
def fer_high_inflammation(case: Case) -> Fired | Missing | None:
    if not case.is_high("ferritin"):
        return None
    if not case.has("crp"):
        return Missing(("crp",))
    if not case.inflammation:
        return None
    return Fired(
        f"Ferritin {case.shown('ferritin')} is high with CRP {case.shown('crp')}.",
        {
            **_ferritin_evidence(case),
            "crp": case.shown("crp"),
            "crp_upper_limit": case.limit("crp", case.limits.high("crp")),
        },
    )


@rule(
    "fer-low-in-inflammation",
    reads=("ferritin", "crp", "tsat"),
    domain="ferritin",
    severity="advisory",
    title="Ferritin in the iron-deficient band for inflammation",
    trigger="CRP above its limit and ferritin below the inflammation cut-off but not below "
    "its plain lower limit",
    says="With inflammation a ferritin in this band is still compatible with iron deficiency "
    "(WHO uses a higher cut-off when inflammation is present).",
    next_steps=(
        Step(
            "Check transferrin saturation; consider a trial of iron if it is low.",
            asks=("tsat",),
            given="Consider a trial of iron if the transferrin saturation given here is low.",
        ),
    ),
    sources=("who-2020-ferritin",),
)
def fer_low_in_inflammation(case: Case) -> Fired | Missing | None:
    cut = case.limits.threshold("ferritin_low_in_inflammation_below")
    ferritin = case.get("ferritin")
    if not case.inflammation or case.is_low("ferritin") or not below(ferritin, cut):
        return None
    return Fired(
        f"Ferritin {case.shown('ferritin')} is below {case.limit('ferritin', cut)}, the iron "
        f"deficiency cut-off with inflammation (CRP {case.shown('crp')}).",
        {
            "ferritin": case.shown("ferritin"),
            "crp": case.shown("crp"),
            "ferritin_low_in_inflammation_below": case.limit("ferritin", cut),
        },
    )


@rule(
    "fer-low-iron-deficiency",
    reads=("ferritin", "b12", "mcv"),
    domain="ferritin",
    severity="advisory",
    title="Iron deficiency without B12 deficiency",
    trigger="ferritin below its lower limit, B12 not low, and not on B12 therapy (on therapy "
    "fer-falling-on-therapy covers a low ferritin)",
    says="Low ferritin with adequate B12 points to iron deficiency alone; small, pale red "
    "cells (low MCV) are expected.",
    next_steps=(
        "Look for the cause of iron loss or poor intake (menstrual or gastrointestinal blood "
        "loss, coeliac disease, diet).",
        "Replace iron and recheck ferritin and the blood count.",
    ),
    sources=("who-2020-ferritin", "mast-1998-ferritin"),
)
def fer_low_iron(case: Case) -> Fired | Missing | None:
    if not case.is_low("ferritin") or case.b12.low is not False or case.on_therapy:
        return None
    return Fired(
        f"Ferritin {case.shown('ferritin')} is low while B12 is {case.b12.status} "
        f"({case.b12_shown}).",
        {**_ferritin_evidence(case), "b12": case.b12_shown, "mcv": case.shown("mcv")},
        missing=() if case.has("mcv") else ("mcv",),
    )


@rule(
    "fer-high-not-b12-related",
    reads=("ferritin", "b12", "crp", "tsat", "egfr"),
    domain="ferritin",
    severity="advisory",
    title="High ferritin not related to B12",
    trigger="ferritin above its upper limit and B12 not low",
    says="B12 supplements will not lower this ferritin; its usual causes are inflammation, "
    "liver disease, chronic kidney disease, metabolic syndrome and haemochromatosis.",
    next_steps=(
        AskTests(
            "Check {tests}.",
            {"crp": "CRP", "tsat": "transferrin saturation", "egfr": "renal function (eGFR)"},
            also=("liver enzymes",),
        ),
        "Do not give B12 to lower ferritin.",
    ),
    sources=("easl-2022-hh", "who-2020-ferritin"),
)
def fer_high_not_b12(case: Case) -> Fired | Missing | None:
    if not case.is_high("ferritin") or case.b12.low is not False:
        return None
    return Fired(
        f"Ferritin {case.shown('ferritin')} is high while B12 is {case.b12.status} "
        f"({case.b12_shown}).",
        {**_ferritin_evidence(case), "b12": case.b12_shown},
    )


@rule(
    "fer-high-iron-overload-pattern",
    reads=("ferritin", "tsat", "b12"),
    domain="ferritin",
    severity="advisory",
    title="Iron overload pattern",
    trigger="ferritin above its upper limit and transferrin saturation above its upper limit, "
    "unless B12 is low (untreated, or on therapy judged by a pre-therapy B12) and neither "
    "repleted nor past the persistence window: ineffective red-cell production raises both, "
    "and fer-may-mask-iron-deficiency covers that time",
    says="High ferritin with high transferrin saturation is the pattern of iron overload "
    "(haemochromatosis); it is managed with venesection, not B12.",
    next_steps=(
        "Repeat fasting transferrin saturation; test HFE genotype (C282Y, H63D).",
        "Check liver enzymes; refer to hepatology or haematology.",
    ),
    sources=("easl-2022-hh", "solmaz-2015-iron"),
)
def fer_iron_overload(case: Case) -> Fired | Missing | None:
    if not case.is_high("ferritin"):
        return None
    if case.b12.low is True and not case.marrow_judged_as_measured:
        return None  # fer-may-mask-iron-deficiency covers the time before repletion
    if not case.has("tsat"):
        return Missing(("tsat",))
    tsat_high = case.limits.high("tsat")
    if not above(case.get("tsat"), tsat_high):
        return None
    return Fired(
        f"Ferritin {case.shown('ferritin')} and transferrin saturation {case.shown('tsat')} "
        f"(above {case.limit('tsat', tsat_high)}) are both high.",
        {
            **_ferritin_evidence(case),
            "tsat": case.shown("tsat"),
            "tsat_upper_limit": case.limit("tsat", tsat_high),
        },
    )
