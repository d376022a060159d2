"""B12 status and functional confirmation: the assessment the B12 facts are read from.

`assess_b12` judges the panel's own B12 (status from total B12, confirmed or
excluded by the functional markers); `assess_for_rules` is the B12 the
blood-count and ferritin rules judge by (on therapy, the latest pre-therapy
B12). The engine computes both once per panel; the fact layer
(`b12lab.rules.facts`) names what the rules read of them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from b12lab.model import Panel, format_number
from b12lab.ranges import Limits
from b12lab.rules.base import (
    LOWER_BOUNDED,
    UPPER_BOUNDED,
    B12Assessment,
    Case,
    above,
    at_least,
    at_most,
    below,
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


def markers_to_add(case: Case) -> tuple[str, ...]:
    """The functional markers (and folate beside a homocysteine) not yet given that would
    settle a borderline B12; holoTC under `nice` or with eGFR below the renal threshold."""
    wanted = list(FUNCTIONAL_MARKERS)
    if case.limits.profile.name == "nice" or case.egfr_low:  # holoTC decides with a low eGFR
        wanted.append("holotc")
    if case.has("homocysteine") and not case.has("folate"):
        wanted.append("folate")
    return tuple(a for a in wanted if not case.has_any(a))
