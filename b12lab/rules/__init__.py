"""The rule catalogue: one module per domain, registered in catalogue order."""

from b12lab.model import DOMAINS
from b12lab.rules import (  # noqa: F401
    b12,
    blood_count,
    ferritin,
    neutrophils,
    platelets,
    timeline,
)
from b12lab.rules.base import RULES, Case, Fired, Missing, Rule

# Rules by domain, and the analytes each domain's rules read, in a fixed order.
RULES_BY_DOMAIN: dict[str, tuple[Rule, ...]] = {
    domain: tuple(r for r in RULES.values() if r.domain == domain) for domain in DOMAINS
}
DOMAIN_READS: dict[str, frozenset[str]] = {
    domain: frozenset().union(*(r.reads for r in rules))
    for domain, rules in RULES_BY_DOMAIN.items()
}

__all__ = ["DOMAIN_READS", "RULES", "RULES_BY_DOMAIN", "Case", "Fired", "Missing", "Rule"]
