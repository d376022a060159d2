"""Platelets: B12 deficiency lowers them; it never raises them."""

from __future__ import annotations

from b12lab.rules.base import (
    AskTests,
    Case,
    Fired,
    Missing,
    Step,
    at_or_above,
    b12_unresolved,
    below,
    ctcae_grade,
    folate_first,
    may_lie_below,
    rule,
)


def _platelet_evidence(case: Case, *limits: str) -> dict[str, str]:
    evidence = {"platelets": case.shown("platelets")}
    if "low" in limits:
        evidence["platelets_lower_limit"] = case.limit("platelets", case.limits.low("platelets"))
        grade = ctcae_grade(case, "platelets")
        if grade is not None:
            evidence["ctcae_grade"] = grade
    if "high" in limits:
        evidence["platelets_upper_limit"] = case.limit("platelets", case.limits.high("platelets"))
    return evidence


def _window(case: Case) -> tuple[int, int, int]:
    t = case.limits.threshold
    return (
        int(t("rebound_window_first_day")),
        int(t("rebound_window_last_day")),
        int(t("persistence_window_days")),
    )


@rule(
    "plt-low-consistent-with-b12",
    reads=("platelets", "b12"),
    domain="platelets",
    severity="advisory",
    title="Low platelets consistent with B12 deficiency",
    trigger="platelets below the lower limit and B12 low, and not on therapy past the platelet "
    "recovery window (then cytopenia-persisting-on-therapy reports it)",
    says="Thrombocytopenia is the usual platelet result of B12 deficiency: megakaryocytes "
    "mature poorly, so fewer platelets are released. Counts recover within days to weeks "
    "of replacement.",
    next_steps=(
        "Recheck the blood count 1-2 weeks after starting B12; the count should climb.",
        "If platelets do not recover as B12 is replaced, look for another cause.",
    ),
    sources=("stabler-2013-b12", "green-2017-megaloblastic"),
)
def plt_low_consistent(case: Case) -> Fired | Missing | None:
    if not case.is_low("platelets"):
        return None
    if case.b12.low is None:
        return b12_unresolved(case)
    if not case.b12.low or case.persisting("platelets"):
        return None
    return Fired(
        f"Platelets {case.shown('platelets')} are below "
        f"{case.limit('platelets', case.limits.low('platelets'))} with B12 "
        f"{case.b12.status} ({case.b12_shown}).",
        {**_platelet_evidence(case, "low"), "b12": case.b12_shown},
    )


@rule(
    "plt-low-not-explained-by-b12",
    reads=("platelets", "b12", "folate"),
    domain="platelets",
    severity="advisory",
    title="Low platelets not explained by B12",
    trigger="platelets below the lower limit and B12 not low",
    says="B12 status is adequate, so it does not account for the low platelet count; "
    "another cause has to be found.",
    next_steps=(
        "Repeat the count in a citrate tube to exclude clumping (pseudothrombocytopenia).",
        "Review drugs, alcohol, liver disease and splenomegaly, infection and immune "
        "thrombocytopenia; a blood film helps.",
        Step("Measure folate: its deficiency also lowers platelets.", asks=("folate",)),
    ),
    sources=("stabler-2013-b12", "green-2017-megaloblastic"),
)
def plt_low_not_explained(case: Case) -> Fired | Missing | None:
    if not case.is_low("platelets") or case.b12.low is not False:
        return None
    note, steps, evidence = folate_first(case, "the low platelets")
    return Fired(
        f"Platelets {case.shown('platelets')} are low while B12 is {case.b12.status} "
        f"({case.b12_shown}).{note}",
        {**_platelet_evidence(case, "low"), "b12": case.b12_shown, **evidence},
        next_steps=steps,
    )


@rule(
    "plt-critical-low",
    reads=("platelets",),
    domain="platelets",
    severity="urgent",
    title="Critically low platelets",
    trigger="platelets below the critical limit, or censored at it (a '<' or '<=' value that "
    "may lie below the critical limit: its bound at or below the CTCAE grade-4 limit)",
    says="At this count the risk of spontaneous bleeding is high whatever the cause. A "
    "censored result that may lie below the limit counts: an urgent finding is never lost to "
    "censoring.",
    next_steps=(
        "Same-day clinical review; examine for bleeding, petechiae and mucosal bleeding.",
        "Confirm the count on a fresh sample and a blood film.",
    ),
    sources=("lab-typical", "ctcae-5"),
)
def plt_critical_low(case: Case) -> Fired | Missing | None:
    critical = case.limits.critical_low("platelets")
    platelets = case.get("platelets")
    evidence = {
        **_platelet_evidence(case, "low"),
        "critical_below": case.limit("platelets", critical),
    }
    if below(platelets, critical):
        return Fired(
            f"Platelets {case.shown('platelets')} are below the critical limit "
            f"{case.limit('platelets', critical)}.",
            evidence,
        )
    grade4 = case.limits.threshold("platelets_grade4_below")
    if not may_lie_below(platelets, critical, grade4):
        return None
    evidence["censored"] = (
        f"{case.shown('platelets')} is censored and may lie below the critical limit "
        f"{case.limit('platelets', critical)}"
    )
    return Fired(
        f"Platelets {case.shown('platelets')} is a censored result that may lie below the "
        f"critical limit {case.limit('platelets', critical)}: treated as critical.",
        evidence,
    )


@rule(
    "plt-high-not-caused-by-b12-deficiency",
    reads=("platelets", "b12", "ferritin", "crp", "tsat"),
    domain="platelets",
    severity="advisory",
    title="High platelets are not caused by B12 deficiency",
    trigger="platelets above the upper limit, B12 low, and not on B12 therapy (or fewer days "
    "on therapy than the start of the rebound window)",
    says="B12 deficiency lowers platelets; it does not raise them. A high count beside a low "
    "B12 points to a second process: iron deficiency, infection or inflammation, recovery "
    "from heavy alcohol use, or an essential thrombocythemia that the deficiency is masking.",
    next_steps=(
        AskTests(
            "Check {tests}.",
            {"ferritin": "ferritin", "tsat": "transferrin saturation", "crp": "CRP"},
            also=("ask about alcohol",),
        ),
        "Review a blood film; if no reactive cause is found, consider JAK2/CALR/MPL testing.",
    ),
    sources=("stabler-2013-b12", "green-2017-megaloblastic"),
)
def plt_high_not_from_b12(case: Case) -> Fired | Missing | None:
    if not case.is_high("platelets"):
        return None
    if case.b12.low is None:
        return b12_unresolved(case)
    first_day, _, _ = _window(case)
    days = case.days_on_therapy
    if not case.b12.low or (case.on_therapy and days is not None and days >= first_day):
        return None
    return Fired(
        f"Platelets {case.shown('platelets')} are above "
        f"{case.limit('platelets', case.limits.high('platelets'))} while B12 is "
        f"{case.b12.status} ({case.b12_shown}) and replacement has not yet taken effect.",
        {
            **_platelet_evidence(case, "high"),
            "b12": case.b12_shown,
            "on_therapy": "no" if not case.on_therapy else f"day {days}",
        },
    )


@rule(
    "plt-high-rebound-on-therapy",
    reads=("platelets",),
    domain="platelets",
    severity="info",
    title="Rebound thrombocytosis as the marrow recovers on B12",
    trigger="platelets above the upper limit, on B12 therapy, with days on therapy inside "
    "the rebound window",
    says="A reactive overshoot of platelets is documented in the first weeks of B12 "
    "replacement (in over half of the children in one series); it is usually transient.",
    next_steps=("Recheck the platelet count after the rebound window has passed.",),
    sources=("ijp-2010-megaloblastic",),
)
def plt_high_rebound(case: Case) -> Fired | Missing | None:
    if not case.is_high("platelets") or not case.on_therapy:
        return None
    first_day, last_day, _ = _window(case)
    days = case.days_on_therapy
    if days is None or not first_day <= days <= last_day:
        return None
    return Fired(
        f"Platelets {case.shown('platelets')} on day {days} of B12 therapy, inside the rebound "
        f"window (days {first_day}-{last_day}).",
        {
            **_platelet_evidence(case, "high"),
            "days_on_therapy": str(days),
            "rebound_window": f"days {first_day}-{last_day}",
        },
        next_steps=(f"Recheck platelets after day {last_day} of therapy.",),
    )


@rule(
    "plt-high-persistent-consider-et",
    reads=("platelets", "b12"),
    domain="platelets",
    severity="advisory",
    title="Persistent thrombocytosis: consider essential thrombocythemia",
    trigger="platelets above the upper limit and either on therapy beyond the persistence "
    "window, or on therapy past the rebound window with B12 repleted (the on-therapy B12 "
    "measured not low; day 43 qualifies) or not low before therapy, or high on two panels "
    "more than the persistence window apart",
    says="By now a reactive rebound should have settled. A primary (essential) "
    "thrombocythemia may have been masked by the deficiency and unmasked by B12 repletion.",
    next_steps=(
        "Exclude reactive causes (iron deficiency, infection, inflammation, recent surgery).",
        "Test for JAK2 V617F, CALR and MPL mutations and refer to haematology.",
    ),
    sources=("ijp-2010-megaloblastic", "stabler-2013-b12"),
)
def plt_high_persistent(case: Case) -> Fired | Missing | None:
    if not case.is_high("platelets"):
        return None
    _, last_day, persistence = _window(case)
    days = case.days_on_therapy
    evidence = _platelet_evidence(case, "high")
    if case.on_therapy and days is not None:
        if days > persistence:
            reason = f"still high on day {days} of therapy, beyond the {persistence}-day window"
        elif days > last_day and case.b12.low is False:
            now = "repleted" if case.b12.repleted else "not low"
            reason = (
                f"still high on day {days} of therapy, past the rebound window (day "
                f"{last_day}), with B12 {now} ({case.b12_shown}, {case.b12.status})"
            )
        else:
            reason = ""
        if reason:
            evidence["days_on_therapy"] = str(days)
            evidence["platelets"] = f"{case.shown('platelets')} on {case.panel_date}"
            return Fired(f"Platelets {case.shown('platelets')} {reason}.", evidence)
    earlier = _earlier_high_platelets(case, persistence)
    if earlier is not None:
        date, shown = earlier
        evidence["earlier_platelets"] = f"{shown} on {date.isoformat()}"
        evidence["platelets"] = f"{case.shown('platelets')} on {case.panel_date}"
        gap = (case.panel_date - date).days
        return Fired(
            f"Platelets were high on {date.isoformat()} ({shown}) and are still high "
            f"{gap} days later ({case.shown('platelets')}), beyond the {persistence}-day window.",
            evidence,
        )
    return None


def _earlier_high_platelets(case: Case, persistence: int):
    for panel in case.history:
        platelets = panel.get("platelets")
        if panel.date is None or platelets is None:
            continue
        high = case.limits.high("platelets")
        still_high = platelets.value > (high or float("inf")) and platelets.censored != "<"
        if still_high and (case.panel_date - panel.date).days > persistence:
            return panel.date, platelets.shown()
    return None


@rule(
    "plt-high-iron-deficiency",
    reads=("platelets", "ferritin", "crp"),
    domain="platelets",
    severity="advisory",
    title="High platelets with iron deficiency",
    trigger="platelets above the upper limit and ferritin low (or, with inflammation, below "
    "the inflammation cut-off)",
    says="Iron deficiency is a common cause of reactive thrombocytosis and often coexists "
    "with B12 deficiency.",
    next_steps=(
        "Confirm iron deficiency (iron studies) and look for its cause (blood loss, "
        "malabsorption, diet).",
        "Replace iron; the platelet count should settle as iron stores recover.",
    ),
    sources=("solmaz-2015-iron", "who-2020-ferritin"),
)
def plt_high_iron(case: Case) -> Fired | Missing | None:
    if not case.is_high("platelets"):
        return None
    if not case.has("ferritin"):
        return Missing(("ferritin",))
    ferritin = case.get("ferritin")
    inflamed_cut = case.limits.threshold("ferritin_low_in_inflammation_below")
    evidence = {"platelets": case.shown("platelets"), "ferritin": case.shown("ferritin")}
    if case.is_low("ferritin"):
        evidence["ferritin_low_below"] = case.limit("ferritin", case.limits.low("ferritin"))
    elif case.inflammation and below(ferritin, inflamed_cut):
        evidence["crp"] = case.shown("crp")
        evidence["ferritin_low_in_inflammation_below"] = case.limit("ferritin", inflamed_cut)
    elif below(ferritin, inflamed_cut) and not case.has("crp"):
        return Missing(("crp",))
    else:
        return None
    return Fired(
        f"Platelets {case.shown('platelets')} are high with ferritin {case.shown('ferritin')}, "
        "which indicates iron deficiency.",
        evidence,
    )


@rule(
    "plt-high-alcohol-recovery",
    reads=("platelets",),
    domain="platelets",
    severity="info",
    title="High platelets after stopping heavy alcohol use",
    trigger="platelets above the upper limit and alcohol use stopped (--alcohol-stopped, "
    "alcohol_use: stopped)",
    says="Stopping heavy drinking can be followed by a temporary platelet rebound; alcohol "
    "also depletes B12 and suppresses platelets while drinking continues.",
    next_steps=("Recheck the count after a few weeks of abstinence.",),
    sources=("fink-1983-alcohol", "cowan-1971-alcohol"),
)
def plt_high_alcohol(case: Case) -> Fired | Missing | None:
    if not case.is_high("platelets") or not case.panel.context.alcohol_stopped:
        return None
    return Fired(
        f"Platelets {case.shown('platelets')} are high and heavy alcohol use has recently stopped.",
        {"platelets": case.shown("platelets"), "alcohol_use": "stopped"},
    )


@rule(
    "plt-extreme-high",
    reads=("platelets",),
    domain="platelets",
    severity="urgent",
    title="Extreme thrombocytosis",
    trigger="platelets at or above the extreme (critical high) limit",
    says="A count this high carries both thrombosis and bleeding risk (acquired von "
    "Willebrand syndrome) whatever its cause.",
    next_steps=(
        "Same-day clinical review; ask about thrombosis and bleeding symptoms.",
        "Confirm on a fresh sample with a blood film; discuss with haematology.",
    ),
    sources=("lab-typical",),
)
def plt_extreme_high(case: Case) -> Fired | Missing | None:
    extreme = case.limits.critical_high("platelets")
    if not at_or_above(case.get("platelets"), extreme):
        return None
    return Fired(
        f"Platelets {case.shown('platelets')} are at or above {case.limit('platelets', extreme)}.",
        {
            "platelets": case.shown("platelets"),
            "extreme_at_or_above": case.limit("platelets", extreme),
        },
    )


@rule(
    "plt-low-alcohol",
    reads=("platelets",),
    domain="platelets",
    severity="advisory",
    title="Low platelets with current heavy alcohol use",
    trigger="platelets below the lower limit and alcohol use current (--alcohol-use, "
    "alcohol_use: true or current)",
    says="Alcohol suppresses platelet production directly and also depletes B12; both can "
    "lower the count, alongside liver disease and an enlarged spleen.",
    next_steps=(
        "Ask about the amount and the last drink; check liver enzymes and look for splenomegaly.",
        "Recheck the count after a few weeks of abstinence and B12 repletion.",
    ),
    sources=("cowan-1971-alcohol", "stabler-2013-b12"),
)
def plt_low_alcohol(case: Case) -> Fired | Missing | None:
    if not case.is_low("platelets") or not case.panel.context.alcohol_use:
        return None
    return Fired(
        f"Platelets {case.shown('platelets')} are below "
        f"{case.limit('platelets', case.limits.low('platelets'))} with current heavy alcohol "
        "use.",
        {**_platelet_evidence(case, "low"), "alcohol_use": "current"},
    )
