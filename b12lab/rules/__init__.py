"""The rule catalogue, in catalogue order: rules written as data (`b12lab/rules.yaml`,
evaluated through the fact layer) and the domains still written as Python modules."""

from b12lab.model import DOMAINS
from b12lab.rules.base import RULES, Case, Fired, Missing, Rule
from b12lab.rules.data import shipped_rules


def _register(rules) -> None:
    for rule in rules:
        if rule.id in RULES:
            raise ValueError(f"rule id {rule.id} registered twice")
        RULES[rule.id] = rule


# The domains still written as Python modules take their catalogue place: after the
# data file's B12 rules, before its ferritin rules.
_DATA = shipped_rules()
_FIRST_FERRITIN = next(i for i, r in enumerate(_DATA) if r.domain == "ferritin")
_register(_DATA[:_FIRST_FERRITIN])
from b12lab.rules import blood_count, neutrophils  # noqa: E402, F401

_register(_DATA[_FIRST_FERRITIN:])

# Rules by domain, and the analytes each domain's rules read, in a fixed order.
RULES_BY_DOMAIN: dict[str, tuple[Rule, ...]] = {
    domain: tuple(r for r in RULES.values() if r.domain == domain) for domain in DOMAINS
}
DOMAIN_READS: dict[str, frozenset[str]] = {
    domain: frozenset().union(*(r.reads for r in rules))
    for domain, rules in RULES_BY_DOMAIN.items()
}

__all__ = ["DOMAIN_READS", "RULES", "RULES_BY_DOMAIN", "Case", "Fired", "Missing", "Rule"]
