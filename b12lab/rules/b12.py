"""B12 status, functional confirmation, and the B12-domain rules."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from b12lab.model import Panel, format_number
from b12lab.ranges import Limits
from b12lab.rules.base import (
    LOWER_BOUNDED,
    MARKER_NAMES,
    UPPER_BOUNDED,
    AskTests,
    B12Assessment,
    Case,
    Fired,
    Missing,
    Step,
    above,
    at_least,
    at_most,
    below,
    next_b12_markers,
    rule,
    still_deficient_on_therapy,
    therapy_days,
    therapy_start,
)

FUNCTIONAL_MARKERS = ("mma", "homocysteine")


def b12_status(panel: Panel, limits: Limits) -> tuple[str, list[str]]:
    """Status from serum total B12 alone, with warnings for censored values.

    A censored value decides by the side it lies on; one that straddles a
    deficiency or borderline cut-off is borderline.
    """
    b12 = panel.get("b12")
    if b12 is None:
        return "unknown", []
    deficient = limits.profile.b12_deficient_below.value
    borderline = limits.profile.b12_borderline_below.value
    upper = limits.high("b12")
    value = b12.value
    if b12.censored in UPPER_BOUNDED:
        if below(b12, deficient):
            return "deficient", []
        return "borderline", [
            f"b12: {b12.input} straddles the deficiency cut-off "
            f"{format_number(deficient, 1)} pmol/L; status reported as borderline"
        ]
    if b12.censored in LOWER_BOUNDED:
        if above(b12, upper):
            return "high", []
        if at_least(b12, borderline):
            return "normal", [f"b12: {b12.input} may lie above the upper reference limit"]
        return "borderline", [
            f"b12: {b12.input} straddles the borderline cut-off "
            f"{format_number(borderline, 1)} pmol/L; status reported as borderline"
        ]
    if value < deficient:
        return "deficient", []
    if value < borderline:
        return "borderline", []
    if upper is None or value <= upper:
        return "normal", []
    return "high", []


def functional_markers(panel: Panel, limits: Limits) -> tuple[list[str], list[str]]:
    """Markers that confirm a functional deficiency, and markers that exclude one.

    Homocysteine counts only with folate measured and not low: folate
    deficiency raises it too. With eGFR below the renal threshold neither a
    raised MMA nor a raised homocysteine confirms: both rise as kidney
    function falls (holoTC still does).
    """
    confirm, exclude = [], []
    folate_ok = at_least(panel.get("folate"), limits.low("folate"))
    renal = _egfr_low(panel, limits)
    mma, hcy, holotc = panel.get("mma"), panel.get("homocysteine"), panel.get("holotc")
    if above(mma, limits.high("mma")):
        if not renal:
            confirm.append("mma")
    elif at_most(mma, limits.high("mma")):
        exclude.append("mma")
    if folate_ok and above(hcy, limits.high("homocysteine")):
        if not renal:
            confirm.append("homocysteine")
    elif folate_ok and at_most(hcy, limits.high("homocysteine")):
        exclude.append("homocysteine")
    # A low holoTC confirms; a normal one does not exclude a deficiency: only MMA or
    # homocysteine measured and not raised make a borderline B12 "not low".
    if below(holotc, limits.profile.holotc_deficient_below.value):
        confirm.append("holotc")
    return confirm, exclude


def _egfr_low(panel: Panel, limits: Limits) -> bool:
    return below(panel.get("egfr"), limits.threshold("egfr_renal_below"))


def renal_raised(panel: Panel, limits: Limits) -> tuple[str, ...]:
    """MMA and homocysteine raised with eGFR below the renal threshold: the rise may be renal."""
    if not _egfr_low(panel, limits):
        return ()
    return tuple(
        marker
        for marker in ("mma", "homocysteine")
        if above(panel.get(marker), limits.high(marker))
    )


def renal_caveat(panel: Panel, limits: Limits) -> bool:
    """A raised MMA or homocysteine with eGFR below the renal threshold."""
    return bool(renal_raised(panel, limits))


def assess_b12(panel: Panel, limits: Limits) -> tuple[B12Assessment, list[str]]:
    status, warnings = b12_status(panel, limits)
    confirm, exclude = functional_markers(panel, limits)
    confirmed = status in ("borderline", "normal") and bool(confirm)
    excluded = status == "borderline" and not confirm and bool(exclude)
    if status == "deficient" or confirmed:
        low: bool | None = True
    elif status in ("normal", "high") or excluded:
        low = False
    else:
        low = None
    markers = tuple(confirm if confirmed else exclude if excluded else ())
    assessment = B12Assessment(
        status, low, confirmed, excluded, markers=markers, renal_caveat=renal_caveat(panel, limits)
    )
    return assessment, warnings


def assess_for_rules(
    panel: Panel,
    limits: Limits,
    serum: B12Assessment,
    history: tuple[Panel, ...],
    today: dt.date,
) -> B12Assessment:
    """The B12 assessment the blood-count and ferritin rules use.

    Off therapy it is the serum assessment. On therapy, a B12 measured on or
    after the start reflects the replacement, not the marrow: the latest
    pre-therapy B12 of the history decides instead; without one, a B12 still
    low counts as low, and anything else leaves B12 undecided (therapy phase).
    """
    days = therapy_days(panel, today)
    start = therapy_start(panel, today)
    if days is None or days < 0 or start is None:
        return serum
    b12 = panel.get("b12")
    if b12 is not None and (b12.carried_from or panel.date or today) < start:
        return serum  # measured before therapy: it speaks for the marrow
    rebound_last_day = limits.threshold("rebound_window_last_day")
    repleted = serum.low is False and serum.status in ("normal", "high")
    if b12 is not None and days > rebound_last_day and repleted:
        # B12 repleted: corrected, and the marrow has had time to respond.
        return replace(serum, repleted=True, excluded=False)
    for earlier in reversed(history):
        measured = earlier.get("b12")
        if measured is None or earlier.date is None or earlier.date >= start:
            continue
        assessment, _ = assess_b12(earlier, limits)
        return replace(
            assessment,
            basis=f"{measured.shown()} before therapy ({earlier.date.isoformat()})",
        )
    if serum.low is True:
        return serum
    return replace(serum, low=None, confirmed=False, excluded=False, on_therapy_b12=True)


def _markers_to_add(case: Case) -> tuple[str, ...]:
    wanted = list(FUNCTIONAL_MARKERS)
    if case.limits.profile.name == "nice" or case.egfr_low:  # holoTC decides with a low eGFR
        wanted.append("holotc")
    if case.has("homocysteine") and not case.has("folate"):
        wanted.append("folate")
    return tuple(a for a in wanted if not case.has_any(a))


def _b12_evidence(case: Case) -> dict[str, str]:
    profile = case.limits.profile
    return {
        "b12": case.shown("b12"),
        "deficient_below": case.limit("b12", profile.b12_deficient_below.value),
        "borderline_below": case.limit("b12", profile.b12_borderline_below.value),
        "guideline": profile.name,
    }


@rule(
    "b12-deficient",
    reads=("b12",),
    domain="b12",
    severity="advisory",
    title="Vitamin B12 deficiency",
    trigger="B12 status is deficient (total B12 below the profile's deficiency cut-off)",
    says="B12 deficiency impairs DNA synthesis in the marrow, so red cells, white cells and "
    "platelets can all fall; the cause should be found and B12 replaced.",
    next_steps=(
        "Look for the cause: diet (vegan, vegetarian), pernicious anemia (intrinsic factor "
        "antibodies), gastric surgery, malabsorption, metformin or acid-suppressing drugs.",
        Step(
            "Replace B12: intramuscular hydroxocobalamin or cyanocobalamin where absorption is "
            "in doubt or the deficiency is severe; high-dose oral B12 for dietary deficiency or "
            "maintenance.",
            on_therapy="B12 is still deficient on therapy: check that the doses are taken and "
            "that the route bypasses any malabsorption (intramuscular B12).",
        ),
        "Recheck the blood count within 1-2 weeks of starting replacement.",
    ),
    sources=("bsh-2014-b12", "stabler-2013-b12", "who-2008-b12", "nice-ng239"),
)
def b12_deficient(case: Case) -> Fired | Missing | None:
    if case.serum_b12.status != "deficient":
        return None
    profile = case.limits.profile
    return Fired(
        f"Total B12 {case.shown('b12')} is below the {profile.name.upper()} deficiency cut-off "
        f"of {case.limit('b12', profile.b12_deficient_below.value)}.",
        _b12_evidence(case),
    )


@rule(
    "b12-borderline",
    reads=("b12", "mma", "homocysteine", "holotc", "folate"),
    domain="b12",
    severity="advisory",
    title="Borderline (indeterminate) B12: confirm with a functional marker",
    trigger="B12 status is borderline and no MMA, homocysteine or holoTC was given",
    says="Total B12 in the borderline band neither confirms nor excludes deficiency; MMA "
    "and/or homocysteine (holoTC where available) decide it.",
    next_steps=(
        "Measure methylmalonic acid (MMA) and/or total homocysteine; holotranscobalamin "
        "(active B12) where available.",
        Step(
            "Measure serum folate alongside, since folate deficiency also raises homocysteine.",
            asks=("folate",),
        ),
    ),
    sources=("bsh-2014-b12", "nice-ng239", "stabler-2013-b12"),
)
def b12_borderline(case: Case) -> Fired | Missing | None:
    if case.serum_b12.status != "borderline":
        return None
    to_add = _markers_to_add(case)
    if any(case.has(a) for a in (*FUNCTIONAL_MARKERS, "holotc")):
        return Missing(to_add) if to_add else None
    profile = case.limits.profile
    return Fired(
        f"Total B12 {case.shown('b12')} lies between the deficiency cut-off "
        f"{case.limit('b12', profile.b12_deficient_below.value)} and "
        f"{case.limit('b12', profile.b12_borderline_below.value)} "
        f"({profile.name.upper()}); whether B12 is low is undetermined until a functional "
        "marker is measured.",
        _b12_evidence(case),
        next_steps=(
            (
                f"With eGFR {case.shown('egfr')} below the renal threshold, MMA and homocysteine "
                "rise with falling kidney function: measure holotranscobalamin instead.",
            )
            if case.egfr_low
            else ()
        ),
        missing=to_add,
    )


@rule(
    "b12-functional-deficiency-confirmed",
    reads=("b12", "mma", "homocysteine", "holotc", "folate", "egfr"),
    domain="b12",
    severity="advisory",
    title="Functional B12 deficiency supported by a second-line marker",
    trigger="B12 status borderline or normal, and MMA above its limit (eGFR not below the "
    "renal threshold), or homocysteine above its limit with folate measured and not low "
    "(eGFR not below the renal threshold), or holoTC below the profile's cut-off",
    says="A raised MMA or homocysteine (or a low holoTC) shows B12 is short where it is "
    "used; the patient is treated as B12-low for the blood-count rules. MMA and homocysteine "
    "both rise as kidney function falls, so with a low eGFR neither confirms on its own; "
    "holoTC does.",
    next_steps=(
        "Treat as B12 deficiency and look for its cause.",
        Step(
            "Check renal function (eGFR): MMA and homocysteine also rise with renal impairment.",
            asks=("egfr",),
        ),
    ),
    sources=("bsh-2014-b12", "nice-ng239", "refsum-2004-hcy"),
)
def b12_functional_deficiency(case: Case) -> Fired | Missing | None:
    if not case.serum_b12.confirmed:
        raised_hcy = above(case.get("homocysteine"), case.limits.high("homocysteine"))
        if case.serum_b12.status == "normal" and raised_hcy and not case.has("folate"):
            return Missing(("folate",))
        return None
    evidence = {"b12": case.shown("b12")}
    limits = {
        "mma": case.limits.high("mma"),
        "homocysteine": case.limits.high("homocysteine"),
        "holotc": case.limits.profile.holotc_deficient_below.value,
    }
    parts = []
    for marker in case.serum_b12.markers:
        evidence[marker] = case.shown(marker)
        relation = "below" if marker == "holotc" else "above"
        evidence[f"{marker}_{relation}"] = case.limit(marker, limits[marker])
        parts.append(
            f"{marker} {case.shown(marker)} ({relation} {case.limit(marker, limits[marker])})"
        )
    if "homocysteine" in case.serum_b12.markers:
        evidence["folate"] = case.shown("folate")
    return Fired(
        f"With total B12 {case.serum_b12.status} ({case.shown('b12')}), "
        + "; ".join(parts)
        + " supports a functional B12 deficiency.",
        evidence,
    )


@rule(
    "b12-high",
    reads=("b12",),
    domain="b12",
    severity="info",
    title="High B12: not toxic, and not a cause of low counts",
    trigger="B12 status is high (above the upper reference limit)",
    says="A high B12 is not toxic and does not cause cytopenias; it usually reflects "
    "supplements or injections, otherwise inflammation or liver disease, which raise "
    "ferritin too.",
    next_steps=(
        "Ask about B12 supplements, injections and fortified foods.",
        "If none are taken, consider liver disease, inflammation, renal disease or a "
        "myeloproliferative disorder.",
    ),
    sources=("stabler-2013-b12", "bsh-2014-b12"),
)
def b12_high(case: Case) -> Fired | Missing | None:
    if case.serum_b12.status != "high":
        return None
    return Fired(
        f"Total B12 {case.shown('b12')} is above the upper reference limit "
        f"{case.limit('b12', case.limits.high('b12'))}.",
        {"b12": case.shown("b12"), "upper_limit": case.limit("b12", case.limits.high("b12"))},
    )


@rule(
    "b12-neuro-parenteral",
    reads=("b12",),
    domain="b12",
    severity="urgent",
    title="B12 deficiency with neurological symptoms: start parenteral B12 now",
    trigger="B12 low and neurological symptoms flagged",
    says="Parenteral B12 is the first choice for acute or severe deficiency with "
    "neurological features; treatment should not wait for further tests.",
    next_steps=(
        "Start intramuscular B12 without delay (e.g. hydroxocobalamin 1 mg on alternate days "
        "until no further improvement, per local protocol).",
        "Seek specialist (neurology/haematology) advice the same day.",
        "Do not give folic acid alone before B12.",
    ),
    sources=("nice-ng239", "bsh-2014-b12"),
)
def b12_neuro_parenteral(case: Case) -> Fired | Missing | None:
    if not case.panel.context.neuro_symptoms or case.serum_b12.low is not True:
        return None
    return Fired(
        f"B12 is low ({case.shown('b12')}, {case.serum_b12.status}"
        f"{', functionally confirmed' if case.serum_b12.confirmed else ''}) and neurological "
        "symptoms are reported.",
        {"b12": case.shown("b12"), "neuro_symptoms": "yes"},
    )


@rule(
    "neuro-symptoms-b12-not-excluded",
    reads=("b12", "mma", "homocysteine", "holotc", "folate"),
    domain="b12",
    severity="urgent",
    title="Neurological symptoms and B12 deficiency not excluded: do not wait",
    trigger="neurological symptoms flagged and B12 undetermined (borderline without "
    "functional confirmation either way) or not measured",
    says="With neurological symptoms a B12 deficiency that has not been excluded is "
    "treated without waiting for confirmation: nerve damage can become permanent while "
    "tests are pending.",
    next_steps=(
        "Do not delay B12 replacement for the result: start intramuscular B12 after the "
        "sample is taken, and seek specialist advice the same day.",
        "Do not give folic acid alone before B12.",
    ),
    sources=("bsh-2014-b12", "nice-ng239"),
)
def neuro_not_excluded(case: Case) -> Fired | Missing | None:
    b12 = case.serum_b12
    if not case.panel.context.neuro_symptoms:
        return None
    steps: tuple[str, ...] = ()
    if b12.status == "unknown":
        reason = "B12 was not measured"
        markers = next_b12_markers(case)
        with_markers = (
            " (with " + " or ".join(MARKER_NAMES[m] for m in markers) + " if it is borderline)"
            if markers
            else ""
        )
        steps = (f"Measure serum B12 now{with_markers}.",)
    elif b12.undetermined:
        reason = f"B12 {case.shown('b12')} is borderline and not yet confirmed either way"
        markers = next_b12_markers(case)
        if markers:
            names = " or ".join(MARKER_NAMES[m] for m in markers)
            steps = (f"Send {names} to settle the borderline B12.",)
    else:
        return None
    return Fired(
        f"Neurological symptoms are reported and {reason}: a deficiency is not excluded.",
        {"neuro_symptoms": "yes", "b12": case.shown("b12"), "b12_status": b12.status},
        next_steps=steps,
    )


@rule(
    "b12-on-therapy",
    reads=("b12",),
    domain="b12",
    severity="info",
    title="On B12 therapy: serum B12 now reflects the replacement",
    trigger="on B12 therapy, no B12 measured before the therapy start in the history, B12 not "
    "repleted, and not b12-not-responding",
    says="Once replacement has started, serum B12 shows the injections or tablets, not the "
    "marrow's supply: it cannot say whether low counts were due to B12 deficiency. Counts "
    "that were low from B12 deficiency are expected to recover within days to weeks.",
    next_steps=(
        "Recheck the blood count 1-2 weeks after the start of therapy; expect platelets "
        "and neutrophils to recover first and hemoglobin to rise over the following weeks.",
        "If a B12 result from before the therapy exists, add it as a dated earlier panel.",
        "If counts do not recover, look for another cause.",
    ),
    sources=("bsh-2014-b12", "stabler-2013-b12"),
)
def b12_on_therapy(case: Case) -> Fired | Missing | None:
    if not case.b12.on_therapy_b12 or still_deficient_on_therapy(case):
        return None
    days = case.days_on_therapy
    measured = (
        f"B12 {case.shown('b12')} was measured on therapy"
        if case.has("b12")
        else "no B12 result is given"
    )
    return Fired(
        f"Day {days} of B12 therapy; {measured} and no B12 from before the therapy is "
        "available, so B12 status cannot explain or exclude the blood counts.",
        {"days_on_therapy": str(days), "b12": case.shown("b12")},
    )


@rule(
    "mma-renal-caveat",
    reads=("mma", "homocysteine", "holotc", "egfr"),
    domain="b12",
    severity="advisory",
    title="Raised MMA or homocysteine with reduced kidney function: not proof of B12 deficiency",
    trigger="MMA (or homocysteine) above its upper limit and eGFR below the renal threshold",
    says="MMA and homocysteine are both cleared by the kidneys and rise as kidney function "
    "falls, so here they do not confirm a functional B12 deficiency; holotranscobalamin is the "
    "marker to measure (not homocysteine, which rises with falling eGFR too).",
    next_steps=(
        Step(
            "Measure holotranscobalamin (active B12) to judge B12 status: unlike MMA and "
            "homocysteine it does not rise as kidney function falls.",
            asks=("holotc",),
            given="Judge B12 status by the holotranscobalamin given here, which kidney function "
            "does not raise.",
        ),
    ),
    sources=("bsh-2014-b12", "refsum-2004-hcy", "kdigo-2012-ckd"),
)
def mma_renal_caveat(case: Case) -> Fired | Missing | None:
    raised = renal_raised(case.panel, case.limits)
    if not raised:
        return None
    egfr_cut = case.limits.threshold("egfr_renal_below")
    evidence = {}
    parts = []
    for marker in raised:
        cut = case.limits.high(marker)
        evidence[marker] = case.shown(marker)
        evidence[f"{marker}_above"] = case.limit(marker, cut)
        parts.append(
            f"{'MMA' if marker == 'mma' else 'homocysteine'} {case.shown(marker)} is above "
            f"{case.limit(marker, cut)}"
        )
    evidence["egfr"] = case.shown("egfr")
    evidence["egfr_renal_below"] = case.limit("egfr", egfr_cut)
    return Fired(
        " and ".join(parts)
        + f" with eGFR {case.shown('egfr')} below {case.limit('egfr', egfr_cut)}.",
        evidence,
    )


@rule(
    "b12-low-in-pregnancy",
    reads=("b12", "holotc", "mma"),
    domain="b12",
    severity="info",
    title="Low B12 in pregnancy: serum B12 falls physiologically",
    trigger="B12 status deficient or borderline and a pregnancy trimester given",
    says="Serum B12 falls physiologically in pregnancy, most in the third trimester, so a low "
    "result overstates deficiency; holoTC or MMA help. Treat if there is anemia, macrocytosis "
    "or neurological signs.",
    next_steps=(
        AskTests(
            "Measure {tests} to judge B12 status in pregnancy.",
            {"holotc": "holotranscobalamin (active B12)", "mma": "methylmalonic acid (MMA)"},
        ),
        "Treat if there is anemia, macrocytosis or neurological signs; otherwise recheck after "
        "delivery.",
    ),
    sources=("bsh-2014-b12", "nice-ng239"),
)
def b12_low_in_pregnancy(case: Case) -> Fired | Missing | None:
    trimester = case.panel.context.pregnancy_trimester
    if trimester is None or case.serum_b12.status not in ("deficient", "borderline"):
        return None
    return Fired(
        f"Total B12 {case.shown('b12')} is {case.serum_b12.status} in trimester {trimester} of "
        "pregnancy, when serum B12 is physiologically lower.",
        {
            "b12": case.shown("b12"),
            "b12_status": case.serum_b12.status,
            "pregnancy_trimester": str(trimester),
        },
    )
