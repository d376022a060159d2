"""Rules that compare the latest panel with the patient's earlier ones."""

from __future__ import annotations

from b12lab.rules.base import Case, Fired, Missing, below, rule, still_deficient_on_therapy


@rule(
    "plt-recovered-on-therapy",
    reads=("platelets",),
    domain="platelets",
    severity="info",
    title="Platelets recovered on B12 therapy",
    trigger="on B12 therapy, platelets now within the reference interval, and low on an "
    "earlier panel",
    says="Platelets climbing back to normal after replacement is the expected response of "
    "B12-deficiency thrombocytopenia, and supports B12 deficiency as its cause.",
    next_steps=("Keep monitoring the blood count until B12 stores are repleted.",),
    sources=("bsh-2014-b12", "stabler-2013-b12"),
)
def plt_recovered(case: Case) -> Fired | Missing | None:
    if not case.on_therapy or case.flags.get("platelets") != "normal":
        return None
    for panel in reversed(case.history):
        platelets = panel.get("platelets")
        low = case.limits.low("platelets")
        if platelets is not None and low is not None and platelets.value < low:
            return Fired(
                f"Platelets were {platelets.shown()} on {panel.date} and are "
                f"{case.shown('platelets')} on {case.panel_date} (day {case.days_on_therapy} "
                "of B12 therapy).",
                {
                    "platelets": f"{case.shown('platelets')} on {case.panel_date}",
                    "earlier_platelets": f"{platelets.shown()} on {panel.date}",
                    "days_on_therapy": str(case.days_on_therapy),
                },
            )
    return None


@rule(
    "b12-not-responding",
    reads=("b12",),
    domain="b12",
    severity="advisory",
    title="B12 still low on therapy",
    trigger="on B12 therapy for at least the response window (day 14 on), B12 measured on "
    "the latest panel still low and low on an earlier panel, or, without an earlier value, "
    "still deficient",
    says="Serum B12 should rise within days of replacement; a B12 that stays low suggests "
    "missed doses or, with oral B12, malabsorption. Injections bypass malabsorption.",
    next_steps=(
        "Check adherence and the dose and route actually taken.",
        "If oral B12 is used, consider intramuscular B12 (pernicious anemia, gastric "
        "surgery, malabsorption).",
    ),
    sources=("bsh-2014-b12", "nice-ng239", "stabler-2013-b12"),
)
def b12_not_responding(case: Case) -> Fired | Missing | None:
    found = still_deficient_on_therapy(case)
    if found is None:
        return None
    latest, days = found
    for panel in case.history:
        earlier = panel.get("b12")
        if earlier is not None and earlier.value < case.limits.profile.b12_borderline_below.value:
            return Fired(
                f"B12 was {earlier.shown()} on {panel.date} and is still {latest.shown()} on "
                f"{case.panel_date}, day {days} of therapy.",
                {
                    "b12": f"{latest.shown()} on {case.panel_date}",
                    "earlier_b12": f"{earlier.shown()} on {panel.date}",
                    "days_on_therapy": str(days),
                },
            )
    if case.serum_b12.status != "deficient":
        return None
    response = int(case.limits.threshold("b12_response_days"))
    return Fired(
        f"B12 {latest.shown()} measured on {case.panel_date}, day {days} of therapy (at or past "
        f"day {response}), is still deficient.",
        {
            "b12": f"{latest.shown()} on {case.panel_date}",
            "days_on_therapy": str(days),
            "response_window": f"day {response} on",
        },
    )


@rule(
    "neut-recovered-on-therapy",
    reads=("anc", "wbc"),
    domain="neutrophils",
    severity="info",
    title="Neutrophils recovered on B12 therapy",
    trigger="on B12 therapy, ANC (or WBC when no ANC) now within the reference interval, and "
    "low on an earlier panel",
    says="Neutrophils returning to normal after replacement is the expected response of "
    "B12-deficiency neutropenia, which is highly reversible, and supports B12 deficiency as "
    "its cause.",
    next_steps=("Keep monitoring the blood count until B12 stores are repleted.",),
    sources=("bsh-2014-b12", "green-2017-megaloblastic"),
)
def neut_recovered(case: Case) -> Fired | Missing | None:
    analyte = "anc" if case.has("anc") else "wbc" if case.has("wbc") else None
    if not case.on_therapy or analyte is None or case.flags.get(analyte) != "normal":
        return None
    low = case.limits.low(analyte)
    for panel in reversed(case.history):
        earlier = panel.get(analyte)
        if analyte == "wbc" and panel.get("anc") is not None:
            continue
        if earlier is not None and low is not None and below(earlier, low):
            return Fired(
                f"{analyte.upper()} was {earlier.shown()} on {panel.date} and is "
                f"{case.shown(analyte)} on {case.panel_date} (day {case.days_on_therapy} of B12 "
                "therapy).",
                {
                    analyte: f"{case.shown(analyte)} on {case.panel_date}",
                    f"earlier_{analyte}": f"{earlier.shown()} on {panel.date}",
                    "days_on_therapy": str(case.days_on_therapy),
                },
            )
    return None


@rule(
    "hb-recovering-on-therapy",
    reads=("hemoglobin",),
    domain="general",
    severity="info",
    title="Hemoglobin rising on B12 therapy",
    trigger="on B12 therapy, hemoglobin low on an earlier panel, and now higher than that "
    "value by at least the data file's meaningful rise",
    says="A rising hemoglobin after replacement is the expected response of megaloblastic "
    "anemia; it takes longer than platelets and neutrophils to return to normal.",
    next_steps=(
        "Recheck the blood count until hemoglobin is normal; if it stalls, check iron "
        "(ferritin), as new red cells use stored iron.",
    ),
    sources=("bsh-2014-b12", "stabler-2013-b12", "solmaz-2015-iron"),
)
def hb_recovering(case: Case) -> Fired | Missing | None:
    current = case.get("hemoglobin")
    if not case.on_therapy or current is None or current.censored:
        return None
    low = case.limits.low("hemoglobin")
    rise = case.limits.threshold("hemoglobin_real_rise")
    for panel in case.history:
        earlier = panel.get("hemoglobin")
        if earlier is None or low is None or not below(earlier, low):
            continue
        if earlier.censored != ">" and current.value >= earlier.value + rise:
            return Fired(
                f"Hemoglobin rose from {earlier.shown()} on {panel.date} to {current.shown()} "
                f"on {case.panel_date} (day {case.days_on_therapy} of B12 therapy).",
                {
                    "hemoglobin": f"{current.shown()} on {case.panel_date}",
                    "earlier_hemoglobin": f"{earlier.shown()} on {panel.date}",
                    "meaningful_rise": case.limit("hemoglobin", rise),
                    "days_on_therapy": str(case.days_on_therapy),
                },
            )
    return None
