"""Red cells, folate and homocysteine (domain `general`)."""

from __future__ import annotations

from b12lab.rules.base import CTCAE_WORDS, Case, Fired, Missing, Step, ctcae_grade, rule


def _b12_in_question(case: Case) -> bool:
    """B12 low, or borderline and not shown to be adequate."""
    return case.b12.low is True or (case.b12.status == "borderline" and case.b12.low is None)


@rule(
    "macrocytosis-supports-megaloblastic",
    reads=("mcv", "b12", "folate"),
    domain="general",
    severity="info",
    title="Macrocytosis supports megaloblastic anemia",
    trigger="MCV above its upper limit and (B12 low or borderline, or folate low)",
    says="Large red cells beside a low or borderline B12, or a low folate, support a "
    "megaloblastic process (B12 or folate deficiency).",
    next_steps=("Review the film for macro-ovalocytes and hypersegmented neutrophils.",),
    sources=("green-2017-megaloblastic", "bsh-2014-b12"),
)
def macrocytosis(case: Case) -> Fired | Missing | None:
    if not case.is_high("mcv"):
        return None
    folate_low = case.is_low("folate")
    if not _b12_in_question(case) and not folate_low:
        if case.b12.status == "unknown":
            return Missing(("b12",) if case.has("folate") else ("b12", "folate"))
        return None
    evidence = {
        "mcv": case.shown("mcv"),
        "mcv_upper_limit": case.limit("mcv", case.limits.high("mcv")),
        "b12": case.b12_shown,
    }
    with_what = []
    if _b12_in_question(case):
        with_what.append(f"B12 {case.b12.status} ({case.b12_shown})")
    if folate_low:
        with_what.append(f"folate {case.shown('folate')} low")
        evidence["folate"] = case.shown("folate")
    return Fired(
        f"MCV {case.shown('mcv')} is above {case.limit('mcv', case.limits.high('mcv'))} with "
        + " and ".join(with_what)
        + ".",
        evidence,
    )


@rule(
    "macrocytosis-not-b12-or-folate",
    reads=("mcv", "b12", "folate"),
    domain="general",
    severity="info",
    title="Macrocytosis without B12 or folate deficiency",
    trigger="MCV above its upper limit, B12 not low and folate measured and not low (without "
    "folate, missing lists it)",
    says="Large red cells with adequate B12 and folate point elsewhere: alcohol, liver disease, "
    "hypothyroidism, drugs (methotrexate, hydroxyurea, antiretrovirals), reticulocytosis or "
    "myelodysplasia.",
    next_steps=(
        "Ask about alcohol and drugs (methotrexate, hydroxyurea, antiretrovirals); check liver "
        "enzymes, thyroid function and reticulocytes.",
        "Review a blood film; if the cause stays unclear and other counts are abnormal, consider "
        "haematology review for myelodysplasia.",
    ),
    sources=("green-2017-megaloblastic",),
)
def macrocytosis_not_b12_or_folate(case: Case) -> Fired | Missing | None:
    if not case.is_high("mcv") or case.b12.low is not False:
        return None
    if not case.has("folate"):
        return Missing(("folate",))
    if case.is_low("folate"):
        return None
    return Fired(
        f"MCV {case.shown('mcv')} is above {case.limit('mcv', case.limits.high('mcv'))} while "
        f"B12 is {case.b12.status} ({case.b12_shown}) and folate {case.shown('folate')} is "
        "not low.",
        {
            "mcv": case.shown("mcv"),
            "mcv_upper_limit": case.limit("mcv", case.limits.high("mcv")),
            "b12": case.b12_shown,
            "folate": case.shown("folate"),
        },
    )


@rule(
    "folate-deficiency",
    reads=("folate", "b12", "mcv"),
    domain="general",
    severity="advisory",
    title="Folate deficiency with adequate B12",
    trigger="folate below its lower limit and B12 not low",
    says="Folate deficiency with adequate B12 is the likely cause of a megaloblastic picture "
    "(macrocytosis, hypersegmented neutrophils, cytopenias) when one is present; its cause "
    "should be found, and replacement is safe because B12 is adequate.",
    next_steps=(
        "Look for the cause: diet, alcohol, malabsorption (coeliac disease), drugs "
        "(methotrexate, trimethoprim, anticonvulsants), increased need (pregnancy, hemolysis).",
        "Replace folic acid (B12 is adequate, so folate alone is safe) and recheck the blood "
        "count and folate.",
    ),
    sources=("bsh-2014-b12", "green-2017-megaloblastic"),
)
def folate_deficiency(case: Case) -> Fired | Missing | None:
    if not case.is_low("folate") or case.b12.low is not False:
        return None
    picture = ""
    evidence = {
        "folate": case.shown("folate"),
        "folate_lower_limit": case.limit("folate", case.limits.low("folate")),
        "b12": case.b12_shown,
    }
    if case.is_high("mcv"):
        picture = f"; MCV {case.shown('mcv')} is high, a megaloblastic picture"
        evidence["mcv"] = case.shown("mcv")
    elif case.panel.context.hypersegmented_neutrophils:
        picture = "; hypersegmented neutrophils are reported, a megaloblastic picture"
        evidence["hypersegmented_neutrophils"] = "yes"
    return Fired(
        f"Folate {case.shown('folate')} is below "
        f"{case.limit('folate', case.limits.low('folate'))} while B12 is {case.b12.status} "
        f"({case.b12_shown}){picture}.",
        evidence,
    )


def anemia_pattern(case: Case) -> str:
    """The likely kind of anemia from B12, folate, ferritin and MCV together."""
    b12_low = case.b12.low is True
    iron_low = case.is_low("ferritin")
    if case.is_low("folate") and case.b12.low is False:
        kind = "megaloblastic " if case.is_high("mcv") else ""
        also = " (with low iron stores too)" if iron_low else ""
        return f"{kind}anemia of folate deficiency (B12 adequate){also}"
    if b12_low and iron_low:
        return "mixed B12 and iron deficiency anemia (the MCV may look normal)"
    if b12_low and case.is_high("mcv"):
        return "megaloblastic anemia"
    if iron_low and case.is_low("mcv"):
        return "iron deficiency anemia"
    if b12_low:
        return "anemia with low B12"
    if iron_low:
        return "anemia with low iron stores"
    return "anemia of undetermined type"


@rule(
    "anemia-present",
    reads=("hemoglobin", "mcv", "ferritin", "b12", "folate"),
    domain="general",
    severity="advisory",
    title="Anemia",
    trigger="hemoglobin below the sex- and age-specific lower limit",
    says="Anemia; with folate low and B12 adequate it is named as folate deficiency first; "
    "with B12 low and MCV high it is megaloblastic, with ferritin low and MCV low it is iron "
    "deficiency, and with both deficiencies it is mixed (the MCV may then look normal).",
    next_steps=("Check reticulocytes and a blood film; treat the deficiency found.",),
    sources=("who-2024-hb", "green-2017-megaloblastic"),
)
def anemia(case: Case) -> Fired | Missing | None:
    if not case.is_low("hemoglobin"):
        return None
    low = case.limits.low("hemoglobin")
    missing = tuple(a for a in ("mcv", "ferritin", "folate") if not case.has(a))
    return Fired(
        f"Hemoglobin {case.shown('hemoglobin')} is below {case.limit('hemoglobin', low)}; "
        f"pattern: {anemia_pattern(case)}.",
        {
            "hemoglobin": case.shown("hemoglobin"),
            "hemoglobin_lower_limit": case.limit("hemoglobin", low),
            "mcv": case.shown("mcv"),
            "ferritin": case.shown("ferritin"),
            "folate": case.shown("folate"),
            "b12": case.b12_shown,
        },
        missing=missing,
    )


@rule(
    "folate-low-treat-b12-first",
    reads=("folate", "b12"),
    domain="general",
    severity="urgent",
    title="Low folate with low B12: replace B12 before folate",
    trigger="folate below its lower limit and B12 low or borderline (not shown adequate by MMA)",
    says="Folic acid alone can correct the anemia while the B12 deficiency goes on to cause "
    "irreversible neurological damage; B12 must be replaced first (or together).",
    next_steps=(
        "Start B12 replacement before, or together with, folic acid.",
        "Do not prescribe folic acid alone.",
    ),
    sources=("bsh-2014-b12", "green-2017-megaloblastic"),
)
def folate_low(case: Case) -> Fired | Missing | None:
    if not _b12_in_question(case):
        return None
    if not case.has("folate"):
        return Missing(("folate",))
    if not case.is_low("folate"):
        return None
    return Fired(
        f"Folate {case.shown('folate')} is low with B12 {case.b12.status} ({case.b12_shown}).",
        {
            "folate": case.shown("folate"),
            "folate_lower_limit": case.limit("folate", case.limits.low("folate")),
            "b12": case.b12_shown,
        },
    )


@rule(
    "homocysteine-nonspecific",
    reads=("homocysteine", "folate", "mma"),
    domain="general",
    severity="info",
    title="High homocysteine cannot confirm B12 deficiency here",
    trigger="homocysteine above its upper limit and folate below its lower limit",
    says="Folate deficiency raises homocysteine too, so a high homocysteine does not show "
    "B12 deficiency when folate is low; MMA is specific for B12.",
    next_steps=(
        Step(
            "Measure MMA to decide B12 status.",
            asks=("mma",),
            given="Judge B12 status by the MMA given here, which folate does not affect.",
        ),
    ),
    sources=("bsh-2014-b12", "refsum-2004-hcy"),
)
def homocysteine_nonspecific(case: Case) -> Fired | Missing | None:
    if not case.is_high("homocysteine"):
        return None
    if not case.has("folate"):
        return Missing(("folate",))
    if not case.is_low("folate"):
        return None
    return Fired(
        f"Homocysteine {case.shown('homocysteine')} is high with folate "
        f"{case.shown('folate')} low.",
        {"homocysteine": case.shown("homocysteine"), "folate": case.shown("folate")},
        missing=() if case.has("mma") else ("mma",),
    )


@rule(
    "folate-low-b12-unmeasured",
    reads=("folate", "b12"),
    domain="general",
    severity="urgent",
    title="Low folate and B12 not measured: measure B12 before giving folate",
    trigger="folate below its lower limit and B12 not measured",
    says="Folic acid given alone can correct the anemia while an unrecognised B12 "
    "deficiency goes on to damage the nervous system; B12 has to be known first.",
    next_steps=(
        "Measure serum B12 before folic acid is started.",
        "If folate must be started at once, give B12 with it until B12 status is known.",
    ),
    sources=("bsh-2014-b12", "green-2017-megaloblastic"),
)
def folate_low_b12_unmeasured(case: Case) -> Fired | Missing | None:
    if not case.is_low("folate") or case.serum_b12.status != "unknown":
        return None
    return Fired(
        f"Folate {case.shown('folate')} is below "
        f"{case.limit('folate', case.limits.low('folate'))} and B12 was not measured.",
        {
            "folate": case.shown("folate"),
            "folate_lower_limit": case.limit("folate", case.limits.low("folate")),
            "b12": "not measured",
        },
        missing=("b12",),
    )


# --- treatment response ---------------------------------------------------------------

LINE_NAMES = {
    "platelets": "platelets",
    "anc": "ANC",
    "wbc": "WBC (no ANC)",
    "hemoglobin": "hemoglobin",
}


def _persisting_lines(case: Case) -> list[str]:
    """The lines still low past their recovery windows on therapy after a low B12."""
    white = "anc" if case.has("anc") else "wbc" if case.has("wbc") else None
    lines = ["platelets", *((white,) if white else ()), "hemoglobin"]
    return [line for line in lines if case.persisting(line)]


def _persisting(case: Case, lines: list[str]) -> Fired:
    days = case.days_on_therapy
    evidence = {"days_on_therapy": str(days), "b12": case.b12_shown}
    parts = []
    for line in lines:
        evidence[line] = case.shown(line)
        evidence[f"{line}_recovery_by"] = f"day {case.recovery_day(line)}"
        grade = ctcae_grade(case, line) if line in ("anc", "platelets") else None
        graded = f", {CTCAE_WORDS[grade]} (CTCAE grade {grade})" if grade else ""
        parts.append(
            f"{LINE_NAMES[line]} {case.shown(line)}{graded} (expected back by day "
            f"{case.recovery_day(line)})"
        )
    basis = "B12 repleted" if case.b12.repleted else f"B12 {case.b12.status}"
    return Fired(
        f"Day {days} of B12 therapy ({basis}, {case.b12_shown}), still low past the "
        "recovery window: " + "; ".join(parts) + ".",
        evidence,
    )


@rule(
    "cytopenia-persisting-on-therapy",
    reads=("platelets", "anc", "wbc", "hemoglobin", "b12"),
    domain="general",
    severity="advisory",
    title="A cytopenia persisting on B12 therapy",
    trigger="on therapy after a low B12 (or B12 repleted), and exactly one line still low past "
    "its recovery window: platelets or ANC past day 28, hemoglobin past day 56 (data file)",
    says="The expected recovery has not come: check adherence and absorption (injections "
    "bypass malabsorption), a coexisting iron or folate deficiency, and another cause of the "
    "cytopenia; repeat the count with a blood film.",
    next_steps=(
        "Check that the B12 doses are taken and the route bypasses any malabsorption "
        "(intramuscular B12).",
        "Look for a coexisting iron or folate deficiency and another cause of the cytopenia.",
        "Repeat the blood count with a blood film.",
    ),
    sources=("b12lab-recovery-windows", "bsh-2014-b12", "stabler-2013-b12"),
)
def cytopenia_persisting(case: Case) -> Fired | Missing | None:
    lines = _persisting_lines(case)
    if len(lines) != 1:
        return None
    return _persisting(case, lines)


@rule(
    "cytopenias-persisting-on-therapy",
    reads=("platelets", "anc", "wbc", "hemoglobin", "b12"),
    domain="general",
    severity="urgent",
    title="Cytopenias persisting on B12 therapy: exclude a marrow disorder",
    trigger="on therapy after a low B12 (or B12 repleted), and two or more lines still low "
    "past their recovery windows",
    says="Megaloblastic change should have resolved by now: a myelodysplastic syndrome or "
    "leukemia that the deficiency mimicked must now be excluded.",
    next_steps=(
        "Haematology review; blood film; consider marrow examination.",
        "Confirm that B12 was actually given and absorbed, and check iron and folate.",
    ),
    sources=("b12lab-recovery-windows", "green-2017-megaloblastic", "bsh-2014-b12"),
)
def cytopenias_persisting(case: Case) -> Fired | Missing | None:
    lines = _persisting_lines(case)
    if len(lines) < 2:
        return None
    return _persisting(case, lines)
