"""Unit spellings and conversion factors to each analyte's canonical unit.

This is the only module that knows pint exists. Importing pint and building
its registry costs several times the start-up budget of a one-patient call,
so pint is used in two places only:

* to build the factors of every spelling listed in ``reference_ranges.yaml``,
  shipped with the package in ``compiled_ranges.json``
  (``python -m b12lab.ranges --compile``; a test checks them against pint);
* lazily, at run time, for a spelling the table does not hold or for an
  analyte whose conversion basis a ranges overlay changed.

Either way a factor is computed once per (analyte, unit spelling) and kept in
memory, so a million values cost a million dictionary look-ups, not pint calls.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from b12lab.errors import UnitError

MAX_UNIT_LENGTH = 40

_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
_SUPERSCRIPT_RUN = re.compile("[⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+")
_MICRO = re.compile(r"(?<![A-Za-z])mc(?=[gGlLmM])")
_POWER_OF_TEN = re.compile(r"^(?:[x*]\s*)?10\s*(?:\^|\*\*|\*|e|E)\s*(-?\d+)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class UnitBasis:
    """What an analyte's conversions depend on: equal bases give equal factors."""

    canonical: str  # pint expression of the canonical unit
    molar_mass: float | None  # g/mol, for mass <-> molar conversions
    spellings: tuple[tuple[str, str], ...]  # (lab spelling, pint expression)
    counts: CountGrammar | None = None  # count prefix over volume, for cell counts

    def as_json(self) -> dict:
        found = {
            "canonical": self.canonical,
            "molar_mass": self.molar_mass,
            "spellings": [list(pair) for pair in self.spellings],
        }
        if self.counts is not None:
            found["counts"] = self.counts.as_json()
        return found


@dataclass(frozen=True)
class CountGrammar:
    """Count units as a count prefix, an optional counted word, `/` and a volume.

    `k/cumm`, `thou/cmm`, `x10E9/L` and `10^3/mcL` read without a spelling of
    their own; the prefixes, words and volumes come from the data file.
    """

    prefixes: tuple[tuple[str, str], ...]  # (prefix spelling, pint expression of its number)
    counted: tuple[str, ...]  # words naming what is counted ("cells"), read as nothing
    volumes: tuple[tuple[str, str], ...]  # (volume spelling, pint expression)

    def as_json(self) -> dict:
        return {
            "prefixes": [list(pair) for pair in self.prefixes],
            "counted": list(self.counted),
            "volumes": [list(pair) for pair in self.volumes],
        }

    @property
    def pattern(self) -> re.Pattern:
        return _count_pattern(self)


@lru_cache(maxsize=8)
def _count_pattern(grammar: CountGrammar) -> re.Pattern:
    def alternatives(words) -> str:
        keys = sorted({spelling_key(w) for w in words if w}, key=len, reverse=True)
        return "|".join(re.escape(k) for k in keys)

    return re.compile(
        rf"^(?P<prefix>{alternatives(p for p, _ in grammar.prefixes)})?"
        rf"(?:{alternatives(grammar.counted)}|\{{[^{{}}]*\}})?"
        rf"/(?P<volume>{alternatives(v for v, _ in grammar.volumes)})$"
    )


def _unify(text: str) -> str:
    """Micro prefix and power notation written one way; case kept."""
    unified = text.strip().replace("µ", "u").replace("μ", "u").replace("×", "x")
    unified = _SUPERSCRIPT_RUN.sub(lambda m: "^" + m.group(0).translate(_SUPERSCRIPTS), unified)
    return _MICRO.sub("u", unified)


def spelling_key(text: str) -> str:
    """The look-up key of a unit spelling: case, spaces and notation ignored.

    `x10E3/uL`, `10*3/µL` and `10³/mcL` share one key; so do `mm3` and `mm³`.
    """
    key = _unify(text).replace(" ", "").lower()
    key = re.sub(r"10(?:\*\*|\*|e|\^)(?=-?\d)", "10^", key)
    key = re.sub(r"^[x*](?=10\^)", "", key)
    key = re.sub(r"(?<=[a-z])\^(?=\d)", "", key)
    return re.sub(r"(10\^-?\d+)cells", r"\1", key)


# A unit outside the data file's spellings is accepted only when it is a product or
# quotient of known symbols with small integer powers, after an optional count
# prefix (10^9, 10*3, x10E3, 10³): `ug/dL`, `nmol/mL`, `mm^3`. No other numbers,
# no constants, no arithmetic: `pg/mL*0`, `pg/mL*pi` and `pg^9^9^9` are refused.
_COUNT = r"(?:[x*]\s*)?10\s*(?:\^|\*\*|\*|e|E)\s*-?\d{1,2}"
_TERM = r"(?:[fpnumcdkMG]?(?:g|mol|L|l|m)|cells?)(?:\^?-?[1-3])?"
_UNIT_GRAMMAR = re.compile(rf"^(?:{_COUNT}\s*)?(?:{_TERM})?(?:\s*[/*·]\s*{_TERM}|\s+{_TERM})*$")
CANONICAL_DIGITS = 10
FACTOR_DIGITS = 14  # well above CANONICAL_DIGITS, well below float's last-digit error


def to_canonical(number: float, factor: float) -> float:
    """`number` times `factor`, rounded to CANONICAL_DIGITS significant digits.

    Unit factors carry floating-point error (450000 /mm3 is 0.44999999999999996
    10^9/L); rounding far below any laboratory's precision puts a value written
    exactly at a cut-off, in any unit, on the same side as the cut-off itself.
    """
    value = number * factor
    if value == 0 or factor == 1.0:
        return value
    return float(f"{value:.{CANONICAL_DIGITS}g}")


def grammatical(text: str) -> bool:
    """Whether unlisted unit text is a plain product/quotient of known unit symbols."""
    return len(text) <= MAX_UNIT_LENGTH and bool(_UNIT_GRAMMAR.match(_unify(text).strip()))


def _pint_text(text: str) -> str:
    """A spelling the table does not know, checked and rewritten for pint's parser."""
    unified = _unify(text).strip()
    if not _UNIT_GRAMMAR.match(unified):
        raise ValueError("not a unit")
    unified = re.sub(r"\bcells?\b", "1", unified).replace("·", "*")
    power = _POWER_OF_TEN.match(unified)
    scale = f"1e{power.group(1)} " if power else ""
    rest = unified[power.end() :].strip() if power else unified
    rest = re.sub(r"(?<=[A-Za-z])\^?(-?[1-3])\b", r"**\1", rest) or "1"
    if scale and not rest.startswith("/"):
        rest = "* " + rest
    elif not scale and rest.startswith("/"):
        rest = "1 " + rest
    return scale + rest


class UnitCatalog:
    """Factors from any accepted spelling to each analyte's canonical unit."""

    def __init__(
        self,
        bases: Mapping[str, UnitBasis],
        canonical_names: Mapping[str, str],
        shipped: Mapping[str, dict],
    ):
        self._bases = dict(bases)
        self._canonical_names = dict(canonical_names)
        self._listed: dict[str, dict[str, float | None]] = {}
        self._counts: dict[str, dict | None] = {}
        for analyte, basis in self._bases.items():
            entry = shipped.get(analyte)
            if entry is not None and entry["basis"] == basis.as_json():
                self._listed[analyte] = dict(entry["factors"])
                self._counts[analyte] = entry.get("counts")
            else:
                # Basis changed by an overlay (or a new analyte): pint computes
                # these factors on first use.
                self._listed[analyte] = {spelling_key(s): None for s, _ in basis.spellings}
                self._counts[analyte] = None
        self._memo: dict[tuple[str, str], float] = {}
        self._one_scale: dict[str, bool] = {}

    def accepted(self, analyte: str) -> list[str]:
        """The spellings an analyte lists, as printed in messages and `ranges`."""
        return [spelling for spelling, _ in self._bases[analyte].spellings]

    def one_scale(self, analyte: str) -> bool:
        """Whether every spelling the analyte accepts has the canonical unit's scale.

        Then a value without a unit cannot be misread (%, or fL and um3 for MCV).
        """
        found = self._one_scale.get(analyte)
        if found is None:
            found = self._one_scale[analyte] = all(
                self.factor(analyte, spelling) == 1.0 for spelling in self.accepted(analyte)
            )
        return found

    def lists(self, analyte: str, unit_text: str) -> bool:
        """Whether the data file lists this spelling for the analyte."""
        return spelling_key(unit_text) in self._listed[analyte]

    def factor(self, analyte: str, unit_text: str) -> float:
        """Multiply a value in `unit_text` by this to get the canonical unit.

        Raises UnitError naming the unit and the accepted spellings.
        """
        memo_key = (analyte, unit_text)
        cached = self._memo.get(memo_key)
        if cached is not None:
            return cached
        factor = self._lookup(analyte, unit_text)
        self._memo[memo_key] = factor
        return factor

    def factor_or_none(self, analyte: str, unit_text: str) -> float | None:
        """`factor`, or None when the analyte does not take this unit."""
        try:
            return self.factor(analyte, unit_text)
        except UnitError:
            return None

    def _lookup(self, analyte: str, unit_text: str) -> float:
        if len(unit_text) > MAX_UNIT_LENGTH:
            raise self._rejected(analyte, unit_text[:MAX_UNIT_LENGTH] + "...", "is not a unit")
        listed = self._listed[analyte]
        key = spelling_key(unit_text)
        if key in listed:
            factor = listed[key]
            if factor is None:
                expression = dict((spelling_key(s), e) for s, e in self._bases[analyte].spellings)[
                    key
                ]
                factor = pint_factor(self._bases[analyte], expression)
                listed[key] = factor
            return factor
        counted = self._count_factor(analyte, key)
        if counted is not None:
            return counted
        try:
            ucum = ucum_factor(self._bases[analyte], _unify(unit_text))
        except IncompatibleUnit:
            raise self._rejected(
                analyte, unit_text, f"is not a unit of {self._canonical_names[analyte]}"
            ) from None
        if ucum is not None:
            return ucum
        try:
            expression = _pint_text(unit_text)
        except ValueError:
            raise self._rejected(analyte, unit_text, "is not a unit") from None
        try:
            return pint_factor(self._bases[analyte], expression)
        except IncompatibleUnit:
            raise self._rejected(
                analyte, unit_text, f"is not a unit of {self._canonical_names[analyte]}"
            ) from None
        except Exception:
            # pint raises a wide variety of parse errors; all mean "not a unit".
            raise self._rejected(analyte, unit_text, "is not a unit b12lab knows") from None

    def _count_factor(self, analyte: str, key: str) -> float | None:
        """The factor of a count unit read by the count grammar, or None."""
        grammar = self._bases[analyte].counts
        if grammar is None:
            return None
        match = grammar.pattern.match(key)
        if match is None:
            return None
        factors = self._counts[analyte]
        if factors is None:
            factors = self._counts[analyte] = count_factors(self._bases[analyte])
        multiplier = factors["prefixes"][match.group("prefix") or ""]
        return _exact(multiplier * factors["volumes"][match.group("volume")])

    def _rejected(self, analyte: str, unit_text: str, reason: str) -> UnitError:
        return UnitError(
            f"unit '{unit_text}' for {analyte} {reason}",
            field=analyte,
            value=unit_text,
            fix=f"use one of: {', '.join(self.accepted(analyte))}",
        )


class IncompatibleUnit(Exception):
    """The spelling parses, but measures something else (mass for a count)."""


@lru_cache(maxsize=1)
def _registry():
    """pint's registry with the UCUM units (ucumvert's definitions) added."""
    from ucumvert import PintUcumRegistry

    return PintUcumRegistry(cache_folder=None)


@lru_cache(maxsize=1)
def _ucum_reader():
    """UCUM code -> a quantity of `_registry()` (ucumvert's parser and transformer)."""
    from ucumvert import UcumToPintTransformer, get_ucum_parser, parse_ucum

    parser = get_ucum_parser()
    transform = UcumToPintTransformer(ureg=_registry()).transform
    return lambda code: transform(parse_ucum(code, parser))


@lru_cache(maxsize=4096)
def pint_factor(basis: UnitBasis, expression: str) -> float:
    """Factor from `expression` to the basis' canonical unit, computed by pint.

    Mass and molar concentrations convert through the basis' molar mass.
    """
    return _quantity_factor(basis, _registry().parse_expression(expression))


@lru_cache(maxsize=4096)
def ucum_factor(basis: UnitBasis, code: str) -> float | None:
    """Factor from a UCUM code to the basis' canonical unit; None when `code` is not UCUM.

    ucumvert parses the code (case-sensitive, as UCUM is; annotations such as
    `{cells}` are unity). A code whose number is not a power of ten (`10.3/uL`,
    UCUM for 30 per microlitre, a lost superscript on a slip) is not taken as
    UCUM. Raises IncompatibleUnit for a UCUM unit of another dimension.
    """
    if not code or len(code) > MAX_UNIT_LENGTH or not code.isascii():
        return None
    registry = _registry()
    try:
        source = _ucum_reader()(code)
    except Exception:
        return None  # not UCUM: the other readers decide
    if not isinstance(source, registry.Quantity):
        return None  # an annotation alone (`{RBCs}`): no unit at all
    number = float(source.magnitude)
    power = math.log10(number) if number > 0 else float("nan")
    if not math.isclose(power, round(power), abs_tol=1e-9):
        return None
    return _quantity_factor(basis, source)


def count_factors(basis: UnitBasis) -> dict:
    """Each count prefix's number and each volume's factor (`1 / volume`), by pint."""
    grammar = basis.counts
    registry = _registry()
    prefixes = {}
    for spelling, expression in grammar.prefixes:
        number = registry.parse_expression(expression)
        if isinstance(number, registry.Quantity):
            if not number.dimensionless:
                raise IncompatibleUnit(expression)
            number = number.to("dimensionless").magnitude
        prefixes[spelling_key(spelling) if spelling else ""] = _exact(float(number))
    volumes = {
        spelling_key(spelling): pint_factor(basis, f"1 / ({expression})")
        for spelling, expression in grammar.volumes
    }
    return {"prefixes": prefixes, "volumes": volumes}


def _quantity_factor(basis: UnitBasis, source) -> float:
    registry = _registry()
    canonical = registry.parse_expression(basis.canonical)
    if not isinstance(source, registry.Quantity):
        source = registry.Quantity(float(source), "dimensionless")
    ratio = source / canonical
    if ratio.dimensionless:
        return _exact(ratio.to("dimensionless").magnitude)
    if basis.molar_mass:
        molar_mass = registry.Quantity(basis.molar_mass, "gram / mole")
        for candidate in (ratio / molar_mass, ratio * molar_mass):
            if candidate.dimensionless:
                return _exact(candidate.to("dimensionless").magnitude)
    raise IncompatibleUnit(str(source))


def _exact(magnitude: float) -> float:
    """The factor without pint's last-digit error: um3 is 1 fL, not 0.9999999999999997
    (so a unit of the same scale is recognised as such), /mm3 is 0.001 10^9/L."""
    return float(f"{float(magnitude):.{FACTOR_DIGITS}g}")


def build_table(bases: Mapping[str, UnitBasis]) -> dict:
    """Every listed spelling's factor, computed by pint, for `unit_table.json`."""
    table = {}
    for analyte, basis in bases.items():
        factors = {spelling_key(s): pint_factor(basis, e) for s, e in basis.spellings}
        table[analyte] = {"basis": basis.as_json(), "factors": factors}
        if basis.counts is not None:
            table[analyte]["counts"] = count_factors(basis)
    return table
