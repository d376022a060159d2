"""Loads, validates and overlays ``reference_ranges.yaml``.

The file is the single home of every clinical number; this module checks its
shape (a malformed file or overlay is rejected with the dotted path of the
offending key), converts numbers given in another unit to the canonical one,
and resolves the limits that apply to one patient (sex, age) under one
guideline profile.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from b12lab.errors import InputError, RangesError, option
from b12lab.units import CountGrammar, UnitBasis, UnitCatalog, spelling_key, to_canonical

PACKAGED_RANGES = Path(__file__).with_name("reference_ranges.yaml")
# The default file, parsed and with pint's unit factors, keyed by the YAML's
# length and CRC-32: start-up then needs neither the YAML parser nor pint. Rebuilt by
# `python -m b12lab.ranges --compile`; ignored if the YAML no longer matches.
COMPILED_RANGES = Path(__file__).with_name("compiled_ranges.json")
MAX_RANGES_BYTES = 5_000_000

SEXES = ("female", "male")
PROFILE_KEYS = {
    "b12_deficient_below": "b12",
    "b12_borderline_below": "b12",
    "holotc_deficient_below": "holotc",
    "holotc_indeterminate_below": "holotc",
}
THRESHOLD_KEYS = {
    "anc_moderate_below": "anc",
    "ferritin_low_in_inflammation_below": "ferritin",
    "rebound_window_first_day": "days",
    "rebound_window_last_day": "days",
    "persistence_window_days": "days",
    "ferritin_real_fall_percent": "percent",
    "b12_response_days": "days",
    "anc_grade2_below": "anc",
    "anc_grade4_below": "anc",
    "platelets_grade2_below": "platelets",
    "platelets_grade3_below": "platelets",
    "platelets_grade4_below": "platelets",
    "egfr_renal_below": "egfr",
    "hemoglobin_real_rise": "hemoglobin",
    "platelet_anc_recovery_days": "days",
    "hemoglobin_recovery_days": "days",
}
# Thresholds the rules read as one scale, from the lowest up.
ORDERED_THRESHOLDS = (
    ("anc_grade4_below", "anc_moderate_below", "anc_grade2_below"),
    ("platelets_grade4_below", "platelets_grade3_below", "platelets_grade2_below"),
    ("rebound_window_first_day", "rebound_window_last_day"),
)
AGE_UNITS = ("year", "years", "y")
DAY_UNITS = ("day", "days", "d")
ANALYTE_KEYS = {
    "name",
    "canonical_unit",
    "pint",
    "decimals",
    "molar_mass",
    "units",
    "unit_set",
    "count_units",
    "aliases",
    "loinc",
    "loinc_excluded",
    "ucum",
    "plausible",
    "reported",
    "common_units",
    "reference",
    "critical",
}
BAND_KEYS = {
    "low",
    "high",
    "sex",
    "age_min",
    "age_max",
    "source",
    "unit",
    "trimester",
    "high_source",
}
TRIMESTERS = (1, 2, 3)
TOP_KEYS = {
    "version",
    "sources",
    "unit_sets",
    "count_units",
    "guideline_profiles",
    "default_guideline",
    "thresholds",
    "derivations",
    "analytes",
}
# Derived values and the coefficients their equation needs (numbers; text for the rest).
DERIVATIONS = {
    "egfr_from_creatinine": {
        "numbers": (
            "multiplier",
            "kappa_female",
            "kappa_male",
            "alpha_female",
            "alpha_male",
            "exponent_above_kappa",
            "age_factor",
            "female_factor",
            "minimum_age",
        ),
        "text": ("equation", "source", "creatinine_unit"),
    },
}


@dataclass(frozen=True)
class Band:
    """A reference interval, for one sex and age range when those are given."""

    low: float | None
    high: float | None
    source: str
    sex: str | None = None
    age_min: float | None = None
    age_max: float | None = None
    trimester: int | None = None  # a pregnancy band applies only in its trimester
    high_source: str | None = None  # the upper limit's source, when not `source`

    def applies_to(self, sex: str | None, age: float | None, trimester: int | None = None) -> bool:
        if self.trimester is not None and trimester != self.trimester:
            return False
        if self.sex is not None and sex != self.sex:
            return False
        if self.age_min is not None and (age is None or age < self.age_min):
            return False
        return not (self.age_max is not None and (age is None or age >= self.age_max))


class Threshold(NamedTuple):
    value: float
    source: str


@dataclass(frozen=True)
class AnalyteSpec:
    key: str
    name: str
    canonical_unit: str
    pint: str
    decimals: int
    molar_mass: float | None
    spellings: tuple[tuple[str, str], ...]
    aliases: tuple[str, ...]
    loinc: tuple[str, ...]
    plausible_low: float
    plausible_high: float
    bands: tuple[Band, ...]
    critical_low: float | None
    critical_high: float | None
    critical_source: str | None
    ucum: str = ""  # UCUM code of the canonical unit
    ucum_codes: tuple[tuple[str, str], ...] = ()  # accepted spelling -> UCUM code
    counts: CountGrammar | None = None  # count units read as prefix over volume
    loinc_names: tuple[tuple[str, str], ...] = ()  # LOINC code -> long common name
    # Codes that look close but measure something else: code -> "long name: why not read".
    loinc_excluded: tuple[tuple[str, str], ...] = ()
    # The range laboratories report (canonical unit) and the units a number without
    # one could be in; see `reported` and `common_units` in reference_ranges.yaml.
    reported_low: float | None = None
    reported_high: float | None = None
    reported_source: str | None = None
    common_units: tuple[str, ...] = ()

    def ucum_for(self, spelling: str) -> str | None:
        """The UCUM code of an accepted spelling of this analyte's unit."""
        key = spelling_key(spelling)
        return next((code for s, code in self.ucum_codes if spelling_key(s) == key), None)

    @property
    def sex_dependent(self) -> bool:
        return any(band.sex for band in self.bands)

    def band(self, sex: str | None, age: float | None, trimester: int | None = None) -> Band:
        for band in self.bands:
            if band.applies_to(sex, age, trimester):
                return band
        return Band(None, None, "none")


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    b12_deficient_below: Threshold
    b12_borderline_below: Threshold
    holotc_deficient_below: Threshold
    holotc_indeterminate_below: Threshold
    # The youngest age (years) the profile's guideline covers, when it sets one.
    minimum_age: Threshold | None = None


@dataclass(frozen=True)
class Limits:
    """The limits in force for one patient under one guideline profile."""

    profile: Profile
    reference: Mapping[str, Band]
    analytes: Mapping[str, AnalyteSpec]
    thresholds: Mapping[str, Threshold]
    # The patient is younger than the profile's guideline covers (NICE NG239: 16).
    below_profile_age: bool = False

    def low(self, analyte: str) -> float | None:
        return self.reference[analyte].low

    def high(self, analyte: str) -> float | None:
        return self.reference[analyte].high

    def critical_low(self, analyte: str) -> float | None:
        """The critical limit, none where no interval applies at this age (an adult
        critical limit is not one for an infant)."""
        return None if analyte in self.unbanded else self.analytes[analyte].critical_low

    def critical_high(self, analyte: str) -> float | None:
        return None if analyte in self.unbanded else self.analytes[analyte].critical_high

    def threshold(self, key: str) -> float:
        return self.thresholds[key].value

    @cached_property
    def unbanded(self) -> frozenset[str]:
        """Analytes with no reference interval here, though the data file gives one at
        other ages: they are not flagged, and the report says so, quoting the age."""
        return frozenset(
            analyte
            for analyte, band in self.reference.items()
            if band.low is None
            and band.high is None
            and any(b.low or b.high for b in self.analytes[analyte].bands)
        )

    @cached_property
    def key(self) -> tuple:
        """Equal keys mean equal limits (two ages in the same band share one)."""
        return (
            self.profile.name,
            self.below_profile_age,
            tuple((a, b.low, b.high) for a, b in self.reference.items()),
        )

    @cached_property
    def _cuts(self) -> dict[str, tuple[float, ...]]:
        cuts: dict[str, set[float]] = {analyte: set() for analyte in self.analytes}
        for analyte, band in self.reference.items():
            cuts[analyte].update(x for x in (band.low, band.high) if x is not None)
        for analyte, spec in self.analytes.items():
            cuts[analyte].update(
                x for x in (spec.critical_low, spec.critical_high) if x is not None
            )
        for key, threshold in self.thresholds.items():
            cuts.setdefault(THRESHOLD_KEYS[key], set()).add(threshold.value)
        for key, analyte in PROFILE_KEYS.items():
            cuts[analyte].add(getattr(self.profile, key).value)
        for values in cuts.values():
            values.add(0.0)  # days before therapy; a result above zero never shown as 0
        return {analyte: tuple(sorted(values)) for analyte, values in cuts.items()}

    def cut_points(self, analyte: str) -> tuple[float, ...]:
        """Every limit the data file attaches to `analyte` (or "days"), and zero, sorted.

        Rules compare values only with these, so a value's position among them
        decides every comparison a rule can make.
        """
        return self._cuts[analyte]


class Ranges:
    """The validated reference ranges in force (defaults plus any overlay)."""

    def __init__(
        self,
        document: Mapping[str, Any],
        origin: tuple[str, ...],
        unit_table: Mapping[str, dict] | None = None,
        sha256: str | None = None,
    ):
        self.origin = origin
        self._document = document
        if sha256 is not None:  # computed when the default file was compiled
            self.__dict__["sha256"] = sha256
        _check_sections(document, origin)
        self.version = str(document.get("version", ""))
        self.sources: dict[str, str] = dict(document.get("sources") or {})
        self.analytes = _analytes(document, origin)
        self.units = UnitCatalog(
            self.unit_bases(),
            {key: f"{spec.name} ({spec.canonical_unit})" for key, spec in self.analytes.items()},
            unit_table or {},
        )
        self._check_names()
        self._check_units(unit_table or {})
        self.thresholds = {
            key: self._threshold(node, f"thresholds.{key}", THRESHOLD_KEYS[key])
            for key, node in document["thresholds"].items()
        }
        self.derivations = _derivations(document.get("derivations"), self.sources, origin)
        self.profiles = {
            name: self._profile(name, node) for name, node in document["guideline_profiles"].items()
        }
        self.default_guideline = document["default_guideline"]
        if not isinstance(self.default_guideline, str):
            raise RangesError("default_guideline", "expected a profile name", source=origin[-1])
        if self.default_guideline not in self.profiles:
            raise RangesError(
                "default_guideline",
                f"'{self.default_guideline}' is not a profile; use one of "
                + ", ".join(self.profiles),
                source=origin[-1],
            )
        self.analytes = {
            key: self._converted_bands(spec, document["analytes"][key])
            for key, spec in self.analytes.items()
        }
        self._check_sources()
        self._check_order()

    def _check_order(self) -> None:
        """Limits in the order the rules assume, checked on the whole file (defaults and
        overlay together, in canonical units): a critical limit lies outside every
        reference interval, and ordered thresholds keep their order."""
        source = self.origin[-1]
        for key, spec in self.analytes.items():
            path = f"analytes.{key}"
            for index, band in enumerate(spec.bands):
                where = f"{path}.reference[{index}]"
                low, high = spec.critical_low, spec.critical_high
                if low is not None and band.low is not None and low > band.low:
                    raise RangesError(
                        f"{path}.critical.low",
                        f"{low:g} is above the lower reference limit {band.low:g} ({where}.low); "
                        "a critical limit lies outside the reference interval",
                        source=source,
                    )
                if (
                    low is not None
                    and band.low is None
                    and band.high is not None
                    and low >= band.high
                ):
                    raise RangesError(
                        f"{path}.critical.low",
                        f"{low:g} is not below the upper reference limit {band.high:g} "
                        f"({where}.high)",
                        source=source,
                    )
                if high is not None and band.high is not None and high < band.high:
                    raise RangesError(
                        f"{path}.critical.high",
                        f"{high:g} is below the upper reference limit {band.high:g} "
                        f"({where}.high); a critical limit lies outside the reference interval",
                        source=source,
                    )
                if (
                    high is not None
                    and band.high is None
                    and band.low is not None
                    and high <= band.low
                ):
                    raise RangesError(
                        f"{path}.critical.high",
                        f"{high:g} is not above the lower reference limit {band.low:g} "
                        f"({where}.low)",
                        source=source,
                    )
        for chain in ORDERED_THRESHOLDS:
            for lower, upper in itertools.pairwise(chain):
                first, second = self.thresholds[lower].value, self.thresholds[upper].value
                if first > second:
                    raise RangesError(
                        f"thresholds.{lower}",
                        f"{first:g} is above thresholds.{upper} ({second:g}); "
                        f"they must keep the order {' <= '.join(chain)}",
                        source=source,
                    )

    def _check_names(self) -> None:
        """A column name, alias or LOINC code means one analyte, never two."""
        owner: dict[str, tuple[str, str]] = {}
        for key, spec in self.analytes.items():
            for field, names in (("key", (key,)), ("aliases", spec.aliases), ("loinc", spec.loinc)):
                for name in names:
                    other = owner.setdefault(column_key(name), (key, name))
                    if other[0] != key:
                        raise RangesError(
                            f"analytes.{key}.{field}",
                            f"'{name}' already names analyte {other[0]} (as '{other[1]}'); "
                            "a name may belong to one analyte only",
                            source=self.origin[-1],
                        )

    def _check_units(self, unit_table: Mapping[str, dict]) -> None:
        """Every unit expression of an analyte the shipped table does not cover is
        evaluated now, so a file `b12lab ranges` accepts converts every value later."""
        from b12lab.units import UnitBasis

        for key, spec in self.analytes.items():
            basis = UnitBasis(spec.pint, spec.molar_mass, spec.spellings, spec.counts)
            entry = unit_table.get(key)
            if entry is not None and entry.get("basis") == basis.as_json():
                continue
            path = f"analytes.{key}"
            _unit_factor(basis, spec.pint, f"{path}.pint", self.origin)
            for spelling, expression in spec.spellings:
                _unit_factor(basis, expression, f"{path}.units.{spelling}", self.origin)
            if spec.counts is not None:
                from b12lab.units import count_factors

                try:
                    factors = count_factors(basis)
                except Exception:
                    factors = None
                if factors is None or not all(
                    isinstance(v, float) and math.isfinite(v) and v > 0
                    for part in factors.values()
                    for v in part.values()
                ):
                    raise RangesError(
                        "count_units",
                        f"a prefix must be a number and a volume a volume ({key} counts "
                        "per volume)",
                        source=self.origin[-1],
                    )

    def unit_bases(self) -> dict[str, UnitBasis]:
        return {
            key: UnitBasis(spec.pint, spec.molar_mass, spec.spellings, spec.counts)
            for key, spec in self.analytes.items()
        }

    @cached_property
    def _alias_index(self) -> dict[str, str]:
        index: dict[str, str] = {}
        for key, spec in self.analytes.items():
            for name in (key, *spec.aliases, *spec.loinc):
                index[column_key(name)] = key
        return index

    @cached_property
    def excluded_codes(self) -> dict[str, tuple[str, str]]:
        """LOINC codes deliberately not read: code -> (the analyte it resembles, why)."""
        return {
            column_key(code): (key, why)
            for key, spec in self.analytes.items()
            for code, why in spec.loinc_excluded
        }

    @cached_property
    def _long_names(self) -> dict[str, str]:
        return {
            name.casefold(): key
            for key, spec in self.analytes.items()
            for _, name in spec.loinc_names
        }

    def analyte_named_in(self, text: str) -> str | None:
        """The analyte a test's display text names (`Hemoglobin [Mass/volume] in Blood`):
        a LOINC long name b12lab lists, or an analyte's key or alias at its start."""
        text = text.strip()
        found = self._long_names.get(text.casefold()) or self.analyte_for(text)
        if found:
            return found
        folded = text.casefold()
        best = None
        for name, key in self._names_longest_first:
            if folded.startswith(name) and not folded[len(name) :].lstrip()[:1].isalnum():
                best = key
                break
        return best

    @cached_property
    def _names_longest_first(self) -> tuple[tuple[str, str], ...]:
        names = {
            name.casefold(): key
            for key, spec in self.analytes.items()
            for name in (key, *spec.aliases)
            if len(name) >= 3
        }
        return tuple(sorted(names.items(), key=lambda item: -len(item[0])))

    def close_analyte(self, name: str) -> str | None:
        """The analyte whose key or alias `name` nearly spells (`Platlet count`, `feritin`)."""
        import difflib

        key = column_key(name)
        if len(key) < 4 or not key.isascii():
            return None
        match = difflib.get_close_matches(key, self._close_names, n=1, cutoff=0.9)
        return self._alias_index[match[0]] if match else None

    @cached_property
    def _close_names(self) -> list[str]:
        return [name for name in self._alias_index if len(name) >= 4 and not name[0].isdigit()]

    def analyte_for(self, name: str) -> str | None:
        """The analyte key a column name, test name, alias or LOINC code means."""
        return self._alias_index.get(column_key(name))

    def profile(self, guideline: str | None) -> Profile:
        name = guideline or self.default_guideline
        try:
            return self.profiles[name.lower()]
        except KeyError:
            raise InputError(
                f"unknown guideline '{name}'",
                field="guideline",
                value=name,
                fix=f"use one of: {', '.join(self.profiles)}",
            ) from None

    def limits(
        self,
        sex: str | None,
        age: float | None,
        guideline: str | None,
        trimester: int | None = None,
    ) -> Limits:
        profile = self.profile(guideline)
        return _cached_limits(self, sex, age, profile, trimester)

    @cached_property
    def sha256(self) -> str:
        """SHA-256 of the ranges document in force (defaults merged with any overlay).

        Computed from a canonical JSON dump (sorted keys), once per Ranges.
        """
        import hashlib
        import json

        text = json.dumps(
            self._document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
        )
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _threshold(self, node: Any, path: str, analyte: str) -> Threshold:
        node = _mapping(node, path, self.origin)
        _only(node, {"value", "unit", "source"}, path, self.origin)
        value = _number(node.get("value"), f"{path}.value", self.origin)
        unit = node.get("unit")
        if analyte == "days":
            if unit is not None and str(unit).lower() not in DAY_UNITS:
                raise RangesError(f"{path}.unit", f"'{unit}' is not days", source=self.origin[-1])
        elif analyte == "percent":
            if unit is not None and str(unit) != "%":
                raise RangesError(f"{path}.unit", f"'{unit}' is not %", source=self.origin[-1])
        elif unit is not None:
            value = self._to_canonical(analyte, value, unit, f"{path}.unit")
        return Threshold(value, str(node.get("source", "")))

    def _to_canonical(self, analyte: str, value: float, unit: Any, path: str) -> float:
        try:
            return to_canonical(value, self.units.factor(analyte, str(unit)))
        except InputError as error:
            raise RangesError(path, str(error), source=self.origin[-1]) from None

    def _profile(self, name: str, node: Any) -> Profile:
        path = f"guideline_profiles.{name}"
        node = _mapping(node, path, self.origin)
        _only(node, {"title", "minimum_age", *PROFILE_KEYS}, path, self.origin)
        missing = [key for key in PROFILE_KEYS if key not in node]
        if missing:
            raise RangesError(path, f"missing {', '.join(missing)}", source=self.origin[-1])
        values = {
            key: self._threshold(node[key], f"{path}.{key}", analyte)
            for key, analyte in PROFILE_KEYS.items()
        }
        for low, high in (
            ("b12_deficient_below", "b12_borderline_below"),
            ("holotc_deficient_below", "holotc_indeterminate_below"),
        ):
            if values[low].value > values[high].value:
                raise RangesError(
                    f"{path}.{low}",
                    f"{values[low].value:g} is above {path}.{high} ({values[high].value:g})",
                    source=self.origin[-1],
                )
        minimum_age = None
        if node.get("minimum_age") is not None:
            age_node = _mapping(node["minimum_age"], f"{path}.minimum_age", self.origin)
            _only(age_node, {"value", "unit", "source"}, f"{path}.minimum_age", self.origin)
            unit = age_node.get("unit")
            if unit is not None and str(unit).lower() not in AGE_UNITS:
                raise RangesError(
                    f"{path}.minimum_age.unit", f"'{unit}' is not years", source=self.origin[-1]
                )
            minimum_age = Threshold(
                _number(age_node.get("value"), f"{path}.minimum_age.value", self.origin),
                str(age_node.get("source", "")),
            )
        return Profile(
            name=name, title=str(node.get("title", name)), minimum_age=minimum_age, **values
        )

    def _converted_bands(self, spec: AnalyteSpec, node: Mapping[str, Any]) -> AnalyteSpec:
        bands = []
        for index, band in enumerate(spec.bands):
            unit = node["reference"][index].get("unit")
            if unit is None:
                bands.append(band)
                continue
            path = f"analytes.{spec.key}.reference[{index}].unit"
            low, high = (
                None if v is None else self._to_canonical(spec.key, v, unit, path)
                for v in (band.low, band.high)
            )
            bands.append(
                Band(
                    low,
                    high,
                    band.source,
                    band.sex,
                    band.age_min,
                    band.age_max,
                    band.trimester,
                    band.high_source,
                )
            )
        return AnalyteSpec(**{**spec.__dict__, "bands": tuple(bands)})

    def _check_sources(self) -> None:
        """Every number names a source listed under `sources` (or the overlay file)."""
        named = [
            (f"analytes.{key}.reference[{index}].source", band.source)
            for key, spec in self.analytes.items()
            for index, band in enumerate(spec.bands)
        ]
        named += [
            (f"analytes.{key}.reference[{index}].high_source", band.high_source)
            for key, spec in self.analytes.items()
            for index, band in enumerate(spec.bands)
            if band.high_source is not None
        ]
        named += [
            (f"analytes.{key}.critical.source", spec.critical_source)
            for key, spec in self.analytes.items()
            if spec.critical_source is not None
        ]
        named += [
            (f"analytes.{key}.reported.source", spec.reported_source)
            for key, spec in self.analytes.items()
            if spec.reported_source is not None
        ]
        named += [(f"thresholds.{key}.source", t.source) for key, t in self.thresholds.items()]
        named += [
            (f"guideline_profiles.{name}.{key}.source", getattr(profile, key).source)
            for name, profile in self.profiles.items()
            for key in PROFILE_KEYS
        ]
        for path, source in named:
            if source not in self.sources and not source.startswith("overlay "):
                raise RangesError(
                    path, f"source '{source}' is not listed under sources", source=self.origin[-1]
                )


@lru_cache(maxsize=1024)
def _cached_limits(
    ranges: Ranges, sex: str | None, age: float | None, profile: Profile, trimester: int | None
) -> Limits:
    reference = {key: spec.band(sex, age, trimester) for key, spec in ranges.analytes.items()}
    reference["b12"] = Band(
        profile.b12_deficient_below.value,
        reference["b12"].high,
        profile.b12_deficient_below.source,
    )
    reference["holotc"] = Band(
        profile.holotc_deficient_below.value,
        reference["holotc"].high,
        profile.holotc_deficient_below.source,
    )
    below_age = (
        profile.minimum_age is not None and age is not None and age < profile.minimum_age.value
    )
    return Limits(profile, reference, ranges.analytes, ranges.thresholds, below_age)


@lru_cache(maxsize=256)
def ucum_code(analyte: str, unit: str) -> str | None:
    """The UCUM code of `unit` for `analyte` in the packaged data file, if it lists one."""
    spec = _default_ranges().analytes.get(analyte)
    return spec.ucum_for(unit) if spec is not None else None


def column_key(name: str) -> str:
    """Column and test names compare ignoring case, spaces, `_`, `-` and `.`."""
    return "".join(ch for ch in str(name).casefold() if ch not in " _-.\t")


# --- loading -----------------------------------------------------------------


def _read_yaml(path: Path, label: str) -> Any:
    from b12lab.inputs.yaml_text import load_yaml

    try:
        if path.stat().st_size > MAX_RANGES_BYTES:
            raise InputError(
                f"ranges file {label} is larger than {MAX_RANGES_BYTES // 1_000_000} MB",
                fix="give a YAML file of reference ranges",
            )
        with path.open("rb") as handle:  # at most the limit, even from /dev/zero
            data = handle.read(MAX_RANGES_BYTES + 1)
    except IsADirectoryError:
        raise InputError(f"ranges file {label} is a directory", fix="give a YAML file") from None
    except FileNotFoundError:
        raise InputError(f"ranges file {label} does not exist", fix="check the path") from None
    except OSError as error:
        raise InputError(f"cannot read ranges file {label}: {error.strerror}") from None
    if len(data) > MAX_RANGES_BYTES:
        raise InputError(
            f"ranges file {label} is larger than {MAX_RANGES_BYTES // 1_000_000} MB",
            fix="give a YAML file of reference ranges",
        )
    if b"\x00" in data:
        raise InputError(
            f"ranges file {label} is not a YAML text file",
            fix="give a YAML file of reference ranges",
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(
            f"ranges file {label} is not UTF-8 text", fix="save it as UTF-8 YAML"
        ) from None
    return load_yaml(text, f"ranges file {label}", typed=True)


def _fingerprint(content: bytes) -> str:
    import zlib

    return f"{len(content)}-{zlib.crc32(content):08x}"


@lru_cache(maxsize=1)
def _default_compiled() -> dict | None:
    """`compiled_ranges.json`, when it still matches the YAML."""
    import json

    try:
        digest = _fingerprint(PACKAGED_RANGES.read_bytes())
        compiled = json.loads(COMPILED_RANGES.read_text(encoding="utf-8"))
        if compiled.get("source_fingerprint") == digest:
            return compiled
    except (OSError, ValueError, KeyError):
        pass
    return None


@lru_cache(maxsize=1)
def _default_document() -> tuple[dict, dict]:
    """The default ranges document and the shipped unit-factor table."""
    compiled = _default_compiled()
    if compiled is not None and "document" in compiled and "unit_table" in compiled:
        return compiled["document"], compiled["unit_table"]
    return _read_yaml(PACKAGED_RANGES, str(PACKAGED_RANGES)), {}


@lru_cache(maxsize=1)
def _default_ranges() -> Ranges:
    document, unit_table = _default_document()
    compiled = _default_compiled() if unit_table else None
    sha256 = compiled.get("document_sha256") if compiled else None
    return Ranges(document, (str(PACKAGED_RANGES),), unit_table, sha256)


def compile_default_ranges() -> dict:
    """The content of `compiled_ranges.json`, computed from the YAML with pint."""
    from b12lab.units import build_table

    document = _read_yaml(PACKAGED_RANGES, str(PACKAGED_RANGES))
    ranges = Ranges(document, (str(PACKAGED_RANGES),))
    return {
        "source_fingerprint": _fingerprint(PACKAGED_RANGES.read_bytes()),
        "document": document,
        "document_sha256": ranges.sha256,
        "unit_table": build_table(ranges.unit_bases()),
    }


def load_ranges(overlay: str | Path | None = None) -> Ranges:
    """The default ranges, with a laboratory's overlay file applied if given."""
    if overlay is None:
        return _default_ranges()
    label = str(overlay)
    document = _read_yaml(Path(overlay), label)
    if document is None or document == {}:
        # An overlay that changes nothing is a mistake the report would never show.
        raise RangesError(
            "(top level)",
            "the file sets no limits, so b12lab's own would apply; give the laboratory's "
            f"limits in it (see the ranges page of the docs), or leave out {option('--ranges')}",
            source=label,
        )
    if not isinstance(document, dict):
        raise RangesError("(top level)", "must be a mapping of keys", source=label)
    default_document, unit_table = _default_document()
    merged = _overlay(default_document, document, "", f"overlay {Path(label).name}", label)
    return Ranges(merged, (str(PACKAGED_RANGES), label), unit_table)


def _overlay(base: Any, extra: Any, path: str, credit: str, label: str) -> Any:
    """Deep merge: mappings merge key by key, anything else replaces.

    A number the overlay changes without naming a source is credited to it.
    """
    if isinstance(extra, dict) and isinstance(base, dict):
        merged = dict(base)
        for key, value in extra.items():
            key_path = f"{path}.{key}" if path else str(key)
            if not isinstance(key, str):
                raise RangesError(key_path, "keys must be text", source=label)
            if not path and key not in TOP_KEYS:
                raise RangesError(
                    key_path, f"unknown key; known: {', '.join(sorted(TOP_KEYS))}", source=label
                )
            if path in ("analytes", "thresholds") and key not in base:
                known = ", ".join(base)
                raise RangesError(key_path, f"unknown {path[:-1]}; known: {known}", source=label)
            merged[key] = _overlay(base.get(key), value, key_path, credit, label)
        if _has_numbers(extra) and "source" not in extra and "source" in merged:
            merged["source"] = credit
        return merged
    if isinstance(extra, list):
        return [
            {**item, "source": item.get("source", credit)} if isinstance(item, dict) else item
            for item in extra
        ]
    if isinstance(extra, dict) and _has_numbers(extra) and "source" not in extra:
        return {**extra, "source": credit}
    return extra


def _has_numbers(node: Mapping[str, Any]) -> bool:
    return any(key in node for key in ("value", "low", "high"))


# --- validation helpers ------------------------------------------------------

# A pint expression in the data file is a plain product or quotient of unit names with
# small integer powers after an optional power-of-ten scale ("1e9 / liter",
# "1 / millimeter ** 3"): never constants, arithmetic or other numbers.
_PINT_TERM = r"[A-Za-z_]+(?:\s*\*\*\s*-?[1-3])?"
_PINT_EXPRESSION = re.compile(
    rf"^\s*(?:(?:1|1e-?\d{{1,2}})\s*(?=[*/])|{_PINT_TERM})(?:\s*[*/]\s*{_PINT_TERM})*\s*$"
)
_PINT_CONSTANTS = frozenset({"pi", "e", "c", "g0", "avogadro_number", "speed_of_light"})
_CHAINED_POWER = re.compile(r"(?:\*\*|\^)\s*[-+]?\s*[\d.]+\s*(?:\*\*|\^)")
_LONG_POWER = re.compile(r"(?:\*\*|\^)\s*[-+]?\s*\d{3,}")


def _unit_factor(basis: Any, expression: str, path: str, origin: tuple[str, ...]) -> float:
    """The factor pint computes for `expression`, or a RangesError naming `path`."""
    from b12lab.units import IncompatibleUnit, pint_factor

    words = set(re.findall(r"\b[A-Za-z_]+", expression))
    if (
        len(expression) > 80
        or _CHAINED_POWER.search(expression)
        or _LONG_POWER.search(expression)
        or not _PINT_EXPRESSION.match(expression)
        or words & _PINT_CONSTANTS
    ):
        raise RangesError(path, f"'{expression[:40]}' is not a unit expression", source=origin[-1])
    try:
        factor = pint_factor(basis, expression)
    except IncompatibleUnit:
        raise RangesError(
            path,
            f"'{expression}' does not convert to the canonical unit '{basis.canonical}'"
            + (" (even through the molar mass)" if basis.molar_mass else ""),
            source=origin[-1],
        ) from None
    except Exception as error:  # pint's many parse errors all mean "not a unit"
        raise RangesError(
            path,
            f"'{expression[:40]}' is not a unit pint knows ({type(error).__name__})",
            source=origin[-1],
        ) from None
    if not math.isfinite(factor) or factor <= 0:
        raise RangesError(
            path, f"'{expression[:40]}' gives a conversion factor of {factor}", source=origin[-1]
        )
    return factor


def _mapping(node: Any, path: str, origin: tuple[str, ...]) -> dict:
    if not isinstance(node, dict):
        raise RangesError(path, f"expected a mapping, got {_kind(node)}", source=origin[-1])
    return node


def _only(node: Mapping[str, Any], allowed: set[str], path: str, origin: tuple[str, ...]) -> None:
    for key in node:
        if key not in allowed:
            raise RangesError(
                f"{path}.{key}",
                f"unknown key; known: {', '.join(sorted(allowed))}",
                source=origin[-1],
            )


def _number(node: Any, path: str, origin: tuple[str, ...], *, optional: bool = False) -> Any:
    if node is None and optional:
        return None
    if isinstance(node, bool) or not isinstance(node, (int, float)):
        raise RangesError(path, f"expected a number, got {_kind(node)}", source=origin[-1])
    try:
        finite = math.isfinite(node)
    except OverflowError:  # an integer too large for a float
        finite = False
    if not finite:
        raise RangesError(path, "must be a finite number of sensible size", source=origin[-1])
    if node < 0:
        raise RangesError(path, f"must not be negative (got {node})", source=origin[-1])
    return float(node)


def _kind(node: Any) -> str:
    if node is None:
        return "nothing"
    if isinstance(node, bool):
        return f"true/false ({node})"
    if isinstance(node, str):
        return f"text '{node[:40]}'"
    return type(node).__name__


def _check_sections(document: Mapping[str, Any], origin: tuple[str, ...]) -> None:
    for key in ("analytes", "thresholds", "guideline_profiles", "default_guideline"):
        if key not in document:
            raise RangesError(key, "is missing", source=origin[-1])
    for key in ("analytes", "thresholds", "guideline_profiles", "unit_sets", "sources"):
        if document.get(key) is not None or key in ("analytes", "thresholds", "guideline_profiles"):
            _mapping(document.get(key), key, origin)
    for key, text in (document.get("sources") or {}).items():
        if not isinstance(text, str):
            raise RangesError(f"sources.{key}", "expected a citation text", source=origin[-1])
    for name, unit_set in (document.get("unit_sets") or {}).items():
        _mapping(unit_set, f"unit_sets.{name}", origin)


def _analytes(document: Mapping[str, Any], origin: tuple[str, ...]) -> dict[str, AnalyteSpec]:
    for key in ("analytes", "thresholds", "guideline_profiles", "default_guideline"):
        if key not in document:
            raise RangesError(key, "is missing", source=origin[-1])
    _only(document, TOP_KEYS, "(top level)", origin)
    analytes = _mapping(document["analytes"], "analytes", origin)
    _mapping(document["thresholds"], "thresholds", origin)
    for key in document["thresholds"]:
        if key not in THRESHOLD_KEYS:
            raise RangesError(f"thresholds.{key}", "unknown threshold", source=origin[-1])
    unit_sets = _mapping(document.get("unit_sets") or {}, "unit_sets", origin)
    counts = _count_grammar(document.get("count_units"), origin)
    found = {key: _analyte(key, node, unit_sets, origin) for key, node in analytes.items()}
    for key, node in analytes.items():
        wanted = node.get("count_units", False)
        if not isinstance(wanted, bool):
            raise RangesError(
                f"analytes.{key}.count_units", "expected true or false", source=origin[-1]
            )
        if wanted:
            if counts is None:
                raise RangesError(
                    f"analytes.{key}.count_units", "no count_units section", source=origin[-1]
                )
            found[key] = replace(found[key], counts=counts)
    return found


def _count_grammar(node: Any, origin: tuple[str, ...]) -> CountGrammar | None:
    """The `count_units` section: prefixes, counted words and volumes."""
    if node is None:
        return None
    node = _mapping(node, "count_units", origin)
    _only(node, {"source", "prefixes", "counted", "volumes"}, "count_units", origin)
    parts = {}
    for part in ("prefixes", "volumes"):
        mapping = _mapping(node.get(part), f"count_units.{part}", origin)
        for spelling, expression in mapping.items():
            if not isinstance(expression, str) or not expression.strip():
                raise RangesError(
                    f"count_units.{part}.{spelling}",
                    "expected a pint expression",
                    source=origin[-1],
                )
        parts[part] = tuple((str(s), str(e)) for s, e in mapping.items())
    counted = node.get("counted") or []
    if not isinstance(counted, list) or not all(isinstance(w, str) for w in counted):
        raise RangesError("count_units.counted", "expected a list of words", source=origin[-1])
    return CountGrammar(parts["prefixes"], tuple(counted), parts["volumes"])


def _analyte(key: str, node: Any, unit_sets: Mapping, origin: tuple[str, ...]) -> AnalyteSpec:
    path = f"analytes.{key}"
    node = _mapping(node, path, origin)
    _only(node, ANALYTE_KEYS, path, origin)
    for required in ("name", "canonical_unit", "pint", "reference", "plausible"):
        if required not in node:
            raise RangesError(f"{path}.{required}", "is missing", source=origin[-1])
    spellings = dict(_mapping(node.get("units") or {}, f"{path}.units", origin))
    if "unit_set" in node:
        unit_set = node["unit_set"]
        if unit_set not in unit_sets:
            raise RangesError(f"{path}.unit_set", f"no unit set '{unit_set}'", source=origin[-1])
        spellings = {**unit_sets[unit_set], **spellings}
    if not spellings:
        raise RangesError(f"{path}.units", "lists no units", source=origin[-1])
    seen: dict[str, str] = {}
    for spelling, expression in spellings.items():
        spelling_path = f"{path}.units.{spelling}"
        if not isinstance(expression, str) or not expression.strip():
            raise RangesError(spelling_path, "expected a pint expression", source=origin[-1])
        other = seen.setdefault(spelling_key(str(spelling)), str(spelling))
        if other != str(spelling) and spellings[other] != expression:
            raise RangesError(spelling_path, f"reads the same as '{other}'", source=origin[-1])
    molar_mass = None
    if node.get("molar_mass") is not None:
        mass_node = _mapping(node["molar_mass"], f"{path}.molar_mass", origin)
        molar_mass = _number(mass_node.get("value"), f"{path}.molar_mass.value", origin)
        if mass_node.get("unit", "g/mol") != "g/mol":
            raise RangesError(f"{path}.molar_mass.unit", "must be g/mol", source=origin[-1])
        if molar_mass <= 0:
            raise RangesError(f"{path}.molar_mass.value", "must be positive", source=origin[-1])
    plausible = _mapping(node["plausible"], f"{path}.plausible", origin)
    plausible_low = _number(plausible.get("low"), f"{path}.plausible.low", origin)
    plausible_high = _number(plausible.get("high"), f"{path}.plausible.high", origin)
    if plausible_low >= plausible_high:
        raise RangesError(f"{path}.plausible.low", "is not below high", source=origin[-1])
    reported_low = reported_high = reported_source = None
    if node.get("reported") is not None:
        reported = _mapping(node["reported"], f"{path}.reported", origin)
        _only(reported, {"low", "high", "source"}, f"{path}.reported", origin)
        reported_low = _number(reported.get("low"), f"{path}.reported.low", origin)
        reported_high = _number(reported.get("high"), f"{path}.reported.high", origin)
        if not plausible_low <= reported_low < reported_high <= plausible_high:
            raise RangesError(
                f"{path}.reported", "must lie within the plausible bounds", source=origin[-1]
            )
        reported_source = str(reported.get("source", ""))
    common_units = _strings(node.get("common_units"), f"{path}.common_units", origin)
    for unit in common_units:
        if spelling_key(unit) not in {spelling_key(str(s)) for s in spellings}:
            raise RangesError(
                f"{path}.common_units", f"'{unit}' is not an accepted unit", source=origin[-1]
            )
    bands = _bands(node["reference"], f"{path}.reference", origin)
    critical_low = critical_high = critical_source = None
    if node.get("critical") is not None:
        critical = _mapping(node["critical"], f"{path}.critical", origin)
        _only(critical, {"low", "high", "source"}, f"{path}.critical", origin)
        critical_low = _number(critical.get("low"), f"{path}.critical.low", origin, optional=True)
        critical_high = _number(
            critical.get("high"), f"{path}.critical.high", origin, optional=True
        )
        if critical_low is not None and critical_high is not None and critical_low >= critical_high:
            raise RangesError(f"{path}.critical.low", "is not below high", source=origin[-1])
        critical_source = str(critical.get("source", ""))
    ucum_codes = _ucum_codes(node.get("ucum"), spellings, str(node["canonical_unit"]), path, origin)
    decimals = node.get("decimals", 1)
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 6:
        raise RangesError(f"{path}.decimals", "expected a whole number 0-6", source=origin[-1])
    return AnalyteSpec(
        key=key,
        name=str(node["name"]),
        canonical_unit=str(node["canonical_unit"]),
        pint=str(node["pint"]),
        decimals=decimals,
        molar_mass=molar_mass,
        spellings=tuple((str(s), str(e)) for s, e in spellings.items()),
        aliases=_strings(node.get("aliases"), f"{path}.aliases", origin),
        loinc=_codes(node.get("loinc"), f"{path}.loinc", origin),
        reported_low=reported_low,
        reported_high=reported_high,
        reported_source=reported_source,
        common_units=common_units or tuple(str(s) for s in spellings),
        loinc_names=_named_codes(node.get("loinc"), f"{path}.loinc", origin),
        loinc_excluded=_named_codes(node.get("loinc_excluded"), f"{path}.loinc_excluded", origin),
        plausible_low=plausible_low,
        plausible_high=plausible_high,
        bands=bands,
        critical_low=critical_low,
        critical_high=critical_high,
        critical_source=critical_source,
        ucum=dict(ucum_codes).get(str(node["canonical_unit"]), ""),
        ucum_codes=ucum_codes,
    )


def _ucum_codes(
    node: Any, spellings: Mapping[str, str], canonical: str, path: str, origin: tuple[str, ...]
) -> tuple[tuple[str, str], ...]:
    """Every accepted spelling (and the canonical unit) has its UCUM code, and only those."""
    codes = _mapping(node if node is not None else {}, f"{path}.ucum", origin)
    for spelling, code in codes.items():
        if str(spelling) not in spellings:
            raise RangesError(
                f"{path}.ucum.{spelling}", "is not an accepted unit spelling", source=origin[-1]
            )
        if not isinstance(code, str) or not code.strip() or " " in code.strip():
            raise RangesError(
                f"{path}.ucum.{spelling}", "expected a UCUM code such as 10*9/L", source=origin[-1]
            )
    missing = [str(s) for s in (canonical, *spellings) if str(s) not in codes]
    if missing:
        raise RangesError(
            f"{path}.ucum",
            f"no UCUM code for {', '.join(dict.fromkeys(missing))}",
            source=origin[-1],
        )
    return tuple((str(s), str(codes[s]).strip()) for s in spellings)


def _derivations(
    node: Any, sources: Mapping[str, str], origin: tuple[str, ...]
) -> dict[str, dict[str, Any]]:
    """The equations' coefficients, each a finite number, each equation with a listed source."""
    found: dict[str, dict[str, Any]] = {}
    for name, entry in _mapping(node or {}, "derivations", origin).items():
        path = f"derivations.{name}"
        if name not in DERIVATIONS:
            raise RangesError(path, "unknown derivation", source=origin[-1])
        entry = _mapping(entry, path, origin)
        spec = DERIVATIONS[name]
        _only(entry, {*spec["numbers"], *spec["text"]}, path, origin)
        values: dict[str, Any] = {}
        for key in spec["numbers"]:
            value = entry.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise RangesError(
                    f"{path}.{key}", f"expected a number, got {_kind(value)}", source=origin[-1]
                )
            if not math.isfinite(value):
                raise RangesError(f"{path}.{key}", "must be a finite number", source=origin[-1])
            values[key] = float(value)
        for key in spec["text"]:
            if not isinstance(entry.get(key), str):
                raise RangesError(f"{path}.{key}", "expected text", source=origin[-1])
            values[key] = entry[key]
        if values["source"] not in sources and not values["source"].startswith("overlay "):
            raise RangesError(
                f"{path}.source",
                f"source '{values['source']}' is not listed under sources",
                source=origin[-1],
            )
        found[name] = values
    return found


def _codes(node: Any, path: str, origin: tuple[str, ...]) -> tuple[str, ...]:
    """LOINC codes, listed or as a mapping of code to long common name."""
    if isinstance(node, Mapping):
        return tuple(code for code, _ in _named_codes(node, path, origin))
    return _strings(node, path, origin)


def _named_codes(node: Any, path: str, origin: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    if node is None or isinstance(node, list):
        return ()
    node = _mapping(node, path, origin)
    for code, name in node.items():
        if not isinstance(name, str) or not name.strip():
            raise RangesError(f"{path}.{code}", "expected the code's long name", source=origin[-1])
    return tuple((str(code), str(name)) for code, name in node.items())


def _strings(node: Any, path: str, origin: tuple[str, ...]) -> tuple[str, ...]:
    if node is None:
        return ()
    if not isinstance(node, list) or not all(isinstance(i, (str, int)) for i in node):
        raise RangesError(path, "expected a list of names", source=origin[-1])
    return tuple(str(item) for item in node)


def _bands(node: Any, path: str, origin: tuple[str, ...]) -> tuple[Band, ...]:
    if not isinstance(node, list) or not node:
        raise RangesError(path, "expected a list of intervals", source=origin[-1])
    bands = []
    for index, item in enumerate(node):
        band_path = f"{path}[{index}]"
        item = _mapping(item, band_path, origin)
        _only(item, BAND_KEYS, band_path, origin)
        low = _number(item.get("low"), f"{band_path}.low", origin, optional=True)
        high = _number(item.get("high"), f"{band_path}.high", origin, optional=True)
        if low is not None and high is not None and low >= high:
            raise RangesError(
                f"{band_path}.low", f"{low:g} is not below high {high:g}", source=origin[-1]
            )
        sex = item.get("sex")
        if sex is not None and sex not in SEXES:
            raise RangesError(f"{band_path}.sex", "must be female or male", source=origin[-1])
        age_min = _number(item.get("age_min"), f"{band_path}.age_min", origin, optional=True)
        age_max = _number(item.get("age_max"), f"{band_path}.age_max", origin, optional=True)
        if age_min is not None and age_max is not None and age_min >= age_max:
            raise RangesError(
                f"{band_path}.age_min",
                f"{age_min:g} is not below age_max {age_max:g}",
                source=origin[-1],
            )
        trimester = item.get("trimester")
        if trimester is not None and (isinstance(trimester, bool) or trimester not in TRIMESTERS):
            raise RangesError(f"{band_path}.trimester", "must be 1, 2 or 3", source=origin[-1])
        high_source = item.get("high_source")
        bands.append(
            Band(
                low,
                high,
                str(item.get("source", "")),
                sex,
                age_min,
                age_max,
                trimester,
                None if high_source is None else str(high_source),
            )
        )
    return tuple(bands)


if __name__ == "__main__":
    import json
    import sys

    if sys.argv[1:] != ["--compile"]:
        sys.exit("usage: python -m b12lab.ranges --compile")
    COMPILED_RANGES.write_text(
        json.dumps(compile_default_ranges(), indent=1) + "\n", encoding="utf-8"
    )
    print(f"wrote {COMPILED_RANGES}")
