"""Neutrophils: B12 deficiency causes neutropenia; B12 excess does not."""

from __future__ import annotations

from b12lab.rules.base import (
    CTCAE_WORDS,
    MARKER_NAMES,
    Case,
    Fired,
    Missing,
    Step,
    b12_unresolved,
    below,
    ctcae_grade,
    folate_first,
    may_lie_below,
    next_b12_markers,
    rule,
)


def white_cells_low(case: Case) -> tuple[str, bool] | None:
    """The neutrophil line's low signal: ANC, or WBC when ANC is missing."""
    if case.has("anc"):
        return "anc", case.is_low("anc")
    if case.has("wbc"):
        return "wbc", case.is_low("wbc")
    return None


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _grade(case: Case) -> str:
    """The CTCAE v5 word for a low ANC's grade (grade 1 mild, 2 moderate, 3 severe,
    4 life-threatening), with the grade, so that the word never pairs with another grade."""
    if case.get("anc") is None:
        return "leukopenia"
    grade = ctcae_grade(case, "anc")
    if grade is None:
        return "neutropenia"
    return f"{CTCAE_WORDS[grade]} neutropenia (CTCAE grade {grade})"


@rule(
    "neut-low-consistent-with-b12",
    reads=("anc", "wbc", "b12"),
    domain="neutrophils",
    severity="advisory",
    title="Neutropenia consistent with B12 deficiency",
    trigger="ANC below the lower limit (or WBC below it when ANC is missing) and B12 low, and "
    "not on therapy past the neutrophil recovery window (then cytopenia-persisting-on-therapy "
    "reports it)",
    says="In B12 deficiency the marrow is full but makes cells that die before release "
    "(ineffective production), so neutrophils fall gradually; this reverses with "
    "replacement. Hypersegmented neutrophils on the film support it.",
    next_steps=(
        "Review a blood film for hypersegmented neutrophils and macro-ovalocytes.",
        "Recheck the count 1-2 weeks after starting B12; it should recover.",
    ),
    sources=("green-2017-megaloblastic", "stabler-2013-b12"),
)
def neut_low_consistent(case: Case) -> Fired | Missing | None:
    line = white_cells_low(case)
    if line is None or not line[1]:
        return None
    if case.b12.low is None:
        return b12_unresolved(case)
    analyte = line[0]
    if not case.b12.low or case.persisting(analyte):
        return None
    return Fired(
        f"{_sentence(_grade(case))}: {analyte.upper()} {case.shown(analyte)} is below "
        f"{case.limit(analyte, case.limits.low(analyte))} with B12 {case.b12.status} "
        f"({case.b12_shown}).",
        _graded(
            case,
            {
                analyte: case.shown(analyte),
                f"{analyte}_lower_limit": case.limit(analyte, case.limits.low(analyte)),
                "b12": case.b12_shown,
            },
        ),
        missing=("anc",) if analyte == "wbc" else (),
    )


def _graded(case: Case, evidence: dict[str, str]) -> dict[str, str]:
    """Evidence with the CTCAE v5 grade of a low ANC."""
    grade = ctcae_grade(case, "anc")
    return {**evidence, "ctcae_grade": grade} if grade is not None else evidence


@rule(
    "neut-low-not-explained-by-b12",
    reads=("anc", "b12", "folate"),
    domain="neutrophils",
    severity="advisory",
    title="Neutropenia not explained by B12",
    trigger="ANC below the lower limit and B12 not low",
    says="B12 does not cause neutropenia when it is adequate, and a high B12 does not cause "
    "it either; other causes have to be considered, especially if the onset was sudden.",
    next_steps=(
        "Review recent drugs (antibiotics, antithyroid drugs, clozapine, chemotherapy) and "
        "infections; check for autoimmune disease.",
        "Compare with earlier counts; ethnic (Duffy-null) neutropenia is benign and may "
        "warrant a lower limit.",
        Step("Measure folate: its deficiency also lowers neutrophils.", asks=("folate",)),
    ),
    sources=("green-2017-megaloblastic", "stabler-2013-b12"),
)
def neut_low_not_explained(case: Case) -> Fired | Missing | None:
    if not case.is_low("anc") or case.b12.low is not False:
        return None
    note, steps, folate = folate_first(case, "the neutropenia")
    return Fired(
        f"{_sentence(_grade(case))}: ANC {case.shown('anc')} is low while B12 is "
        f"{case.b12.status} ({case.b12_shown}).{note}",
        _graded(
            case,
            {
                "anc": case.shown("anc"),
                "anc_lower_limit": case.limit("anc", case.limits.low("anc")),
                "b12": case.b12_shown,
                **folate,
            },
        ),
        next_steps=steps,
    )


@rule(
    "neut-severe",
    reads=("anc",),
    domain="neutrophils",
    severity="urgent",
    title="Critically low neutrophil count",
    trigger="ANC below the critical limit, or censored at it (a '<' or '<=' value that may lie "
    "below the critical limit: its bound at or below the CTCAE grade-4 limit)",
    says="Infection risk is high at this count (CTCAE grade 4, life-threatening, at the default "
    "limit); a fever is a medical emergency.",
    next_steps=(
        "Same-day clinical review.",
        "Fever or signs of infection: treat as neutropenic sepsis, with immediate "
        "broad-spectrum antibiotics.",
    ),
    sources=("ctcae-5", "lab-typical"),
)
def neut_severe(case: Case) -> Fired | Missing | None:
    critical = case.limits.critical_low("anc")
    anc = case.get("anc")
    evidence = _graded(
        case, {"anc": case.shown("anc"), "critical_below": case.limit("anc", critical)}
    )
    if below(anc, critical):
        return Fired(
            f"{_sentence(_grade(case))}: ANC {case.shown('anc')} is below "
            f"{case.limit('anc', critical)}.",
            evidence,
        )
    if not may_lie_below(anc, critical, case.limits.threshold("anc_grade4_below")):
        return None
    evidence["censored"] = (
        f"{case.shown('anc')} is censored and may lie below the critical limit "
        f"{case.limit('anc', critical)}"
    )
    return Fired(
        f"ANC {case.shown('anc')} is a censored result that may lie below the critical limit "
        f"{case.limit('anc', critical)}: treated as critical.",
        evidence,
    )


@rule(
    "neut-hypersegmented-supports-b12",
    reads=("b12", "folate"),
    domain="neutrophils",
    severity="info",
    title="Hypersegmented neutrophils support megaloblastic deficiency",
    trigger="hypersegmented neutrophils flagged, and B12 status not normal or high (or B12 "
    "low by functional markers, or not measured)",
    says="Neutrophils with five or more nuclear lobes are a hallmark of megaloblastic "
    "(B12 or folate) deficiency.",
    next_steps=(),
    sources=("green-2017-megaloblastic", "bsh-2014-b12"),
)
def neut_hypersegmented(case: Case) -> Fired | Missing | None:
    if not case.panel.context.hypersegmented_neutrophils:
        return None
    if case.b12.status in ("normal", "high") and case.b12.low is not True:
        return None
    to_measure = [
        name for key, name in (("b12", "B12"), ("folate", "folate")) if not case.has_any(key)
    ]
    steps = []
    if to_measure:
        steps.append(f"Measure {' and '.join(to_measure)}.")
    if case.b12.undetermined:
        markers = next_b12_markers(case)
        if markers:
            names = " or ".join(MARKER_NAMES[m] for m in markers)
            steps.append(f"Confirm the borderline B12 with {names}.")
    if not steps:
        steps.append("Treat the deficiency that B12 and folate show; the film should normalize.")
    return Fired(
        f"Hypersegmented neutrophils are reported with B12 {case.b12.status}"
        f"{' (' + case.b12_shown + ')' if case.has('b12') else ''}.",
        {"hypersegmented_neutrophils": "yes", "b12": case.b12_shown},
        next_steps=tuple(steps),
        missing=() if case.has("folate") else ("folate",),
    )


def _three_lines(case: Case) -> tuple[list[str], list[str]]:
    """Which of red cells, white cells and platelets are low, and which are unmeasured."""
    low, unmeasured = [], []
    if case.has("hemoglobin"):
        if case.is_low("hemoglobin"):
            low.append("hemoglobin")
    else:
        unmeasured.append("hemoglobin")
    white = white_cells_low(case)
    if white is None:
        unmeasured.append("anc")
    elif white[1]:
        low.append(white[0])
    if case.has("platelets"):
        if case.is_low("platelets"):
            low.append("platelets")
    else:
        unmeasured.append("platelets")
    return low, unmeasured


def _pancytopenia_evidence(case: Case, lines: list[str]) -> dict[str, str]:
    evidence = {a: case.shown(a) for a in lines}
    evidence["b12"] = case.b12_shown
    return evidence


@rule(
    "pancytopenia-b12-mimics-mds",
    reads=("hemoglobin", "anc", "wbc", "platelets", "b12"),
    domain="neutrophils",
    severity="urgent",
    title="Pancytopenia with low B12: can mimic myelodysplasia or leukaemia",
    trigger="hemoglobin, ANC (or WBC) and platelets all low, and B12 low, and not on therapy "
    "past the count recovery window (then cytopenias-persisting-on-therapy reports it)",
    says="Megaloblastic pancytopenia can look like a myelodysplastic syndrome or even acute "
    "leukaemia (dysplasia, blasts in the marrow). Replace B12 and reassess before any "
    "marrow-directed or aggressive treatment.",
    next_steps=(
        "Same-day review; start B12 replacement.",
        "Reassess the blood count and film after replacement before marrow biopsy or "
        "treatment for a presumed marrow malignancy.",
    ),
    sources=("green-2017-megaloblastic", "stabler-2013-b12"),
)
def pancytopenia_b12(case: Case) -> Fired | Missing | None:
    low, unmeasured = _three_lines(case)
    if len(low) + len(unmeasured) < 3 or not low:
        return None
    if unmeasured:
        return Missing(tuple(unmeasured)) if len(low) == 2 else None
    if case.b12.low is None:
        return b12_unresolved(case)
    if not case.b12.low or any(case.persisting(line) for line in low):
        return None
    return Fired(
        "Hemoglobin, white cells and platelets are all low ("
        + ", ".join(f"{a} {case.shown(a)}" for a in low)
        + f") with B12 {case.b12.status} ({case.b12_shown}).",
        _pancytopenia_evidence(case, low),
    )


@rule(
    "pancytopenia-unexplained",
    reads=("hemoglobin", "anc", "wbc", "platelets", "b12", "folate", "egfr"),
    domain="neutrophils",
    severity="urgent",
    title="Pancytopenia not explained by B12",
    trigger="hemoglobin, ANC (or WBC) and platelets all low, and B12 not low",
    says="All three cell lines are low and B12 status does not account for it; marrow "
    "failure, infiltration, hypersplenism and other causes need haematology review. With "
    "folate low, folate deficiency is the first treatable cause to name.",
    next_steps=(
        Step(
            "Haematology review; blood film, reticulocytes, liver and renal function.",
            asks=("egfr",),
            given="Haematology review; blood film, reticulocytes and liver function.",
        ),
        Step("Measure folate: its deficiency also causes pancytopenia.", asks=("folate",)),
    ),
    sources=("green-2017-megaloblastic", "bsh-2014-b12"),
)
def pancytopenia_unexplained(case: Case) -> Fired | Missing | None:
    low, _ = _three_lines(case)
    if len(low) < 3 or case.b12.low is not False:
        return None
    note, steps, folate = folate_first(case, "the pancytopenia")
    return Fired(
        "Hemoglobin, white cells and platelets are all low ("
        + ", ".join(f"{a} {case.shown(a)}" for a in low)
        + f") while B12 is {case.b12.status} ({case.b12_shown}).{note}",
        {**_pancytopenia_evidence(case, low), **folate},
        next_steps=steps,
    )


@rule(
    "wbc-low-not-explained-by-b12",
    reads=("wbc", "anc", "b12", "folate"),
    domain="neutrophils",
    severity="advisory",
    title="Low white cells not explained by B12",
    trigger="WBC below the lower limit, no ANC (nor WBC with neutrophil %), and B12 not low",
    says="B12 status does not account for the leukopenia; a differential count shows which "
    "white cells are low and so which causes to look for.",
    next_steps=(
        "Request a differential count (absolute neutrophils and lymphocytes) and a blood film.",
        "Review drugs, recent infections and autoimmune disease.",
        Step("Measure folate: its deficiency also lowers white cells.", asks=("folate",)),
    ),
    sources=("green-2017-megaloblastic", "stabler-2013-b12"),
)
def wbc_low_not_explained(case: Case) -> Fired | Missing | None:
    if case.has("anc") or not case.is_low("wbc") or case.b12.low is not False:
        return None
    note, steps, folate = folate_first(case, "the leukopenia")
    return Fired(
        f"WBC {case.shown('wbc')} is below {case.limit('wbc', case.limits.low('wbc'))} while "
        f"B12 is {case.b12.status} ({case.b12_shown}); no neutrophil count was given.{note}",
        {
            "wbc": case.shown("wbc"),
            "wbc_lower_limit": case.limit("wbc", case.limits.low("wbc")),
            "b12": case.b12_shown,
            **folate,
        },
        next_steps=steps,
        missing=("anc",),
    )
