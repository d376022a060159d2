"""Red cells, folate and homocysteine (domain `general`)."""

from __future__ import annotations

from b12lab.rules.base import Case, Fired, Missing, Step, rule


@rule(
    "macrocytosis-supports-megaloblastic",
    reads=("mcv", "b12"),
    domain="general",
    severity="info",
    title="Macrocytosis supports megaloblastic anemia",
    trigger="MCV above its upper limit and B12 low or borderline",
    says="Large red cells beside a low or borderline B12 support a megaloblastic process.",
    next_steps=("Review the film for macro-ovalocytes and hypersegmented neutrophils.",),
    sources=("seed-001", "seed-004"),
)
def macrocytosis(case: Case) -> Fired | Missing | None:
    if not case.is_high("mcv"):
        return None
    if case.b12.low is not True and case.b12.status != "borderline":
        return Missing(("b12",)) if case.b12.status == "unknown" else None
    return Fired(
        f"MCV {case.shown('mcv')} is above {case.limit('mcv', case.limits.high('mcv'))} with B12 "
        f"{case.b12.status} ({case.b12_shown}).",
        {
            "mcv": case.shown("mcv"),
            "mcv_upper_limit": case.limit("mcv", case.limits.high("mcv")),
            "b12": case.b12_shown,
        },
    )


def anemia_pattern(case: Case) -> str:
    """The likely kind of anemia from B12, ferritin and MCV together."""
    b12_low = case.b12.low is True
    iron_low = case.is_low("ferritin")
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
    reads=("hemoglobin", "mcv", "ferritin", "b12"),
    domain="general",
    severity="advisory",
    title="Anemia",
    trigger="hemoglobin below the sex- and age-specific lower limit",
    says="Anemia; with B12 low and MCV high it is megaloblastic, with ferritin low and MCV "
    "low it is iron deficiency, and with both deficiencies it is mixed (the MCV may then "
    "look normal).",
    next_steps=("Check reticulocytes and a blood film; treat the deficiency found.",),
    sources=("seed-004", "who-2024-hb"),
)
def anemia(case: Case) -> Fired | Missing | None:
    if not case.is_low("hemoglobin"):
        return None
    low = case.limits.low("hemoglobin")
    missing = tuple(a for a in ("mcv", "ferritin") if not case.has(a))
    return Fired(
        f"Hemoglobin {case.shown('hemoglobin')} is below {case.limit('hemoglobin', low)}; "
        f"pattern: {anemia_pattern(case)}.",
        {
            "hemoglobin": case.shown("hemoglobin"),
            "hemoglobin_lower_limit": case.limit("hemoglobin", low),
            "mcv": case.shown("mcv"),
            "ferritin": case.shown("ferritin"),
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
    trigger="folate below its lower limit and B12 low or borderline",
    says="Folic acid alone can correct the anemia while the B12 deficiency goes on to cause "
    "irreversible neurological damage; B12 must be replaced first (or together).",
    next_steps=(
        "Start B12 replacement before, or together with, folic acid.",
        "Do not prescribe folic acid alone.",
    ),
    sources=("seed-004", "bsh-2014-b12"),
)
def folate_low(case: Case) -> Fired | Missing | None:
    b12_in_question = case.b12.low is True or case.b12.status == "borderline"
    if not b12_in_question:
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
    sources=("seed-004", "bsh-2014-b12"),
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
