"""The rule catalogue, in catalogue order: every rule is data (`b12lab/rules.yaml`),
decided through the fact layer (`b12lab.rules.facts`)."""

from b12lab.model import DOMAINS
from b12lab.rules.base import RULES, Case, Fired, Missing, Rule
from b12lab.rules.data import shipped_rules

for _rule in shipped_rules():
    if _rule.id in RULES:
        raise ValueError(f"rule id {_rule.id} registered twice")
    RULES[_rule.id] = _rule

# Rules by domain, and the analytes each domain's rules read, in a fixed order.
RULES_BY_DOMAIN: dict[str, tuple[Rule, ...]] = {
    domain: tuple(r for r in RULES.values() if r.domain == domain) for domain in DOMAINS
}
DOMAIN_READS: dict[str, frozenset[str]] = {
    domain: frozenset().union(*(r.reads for r in rules))
    for domain, rules in RULES_BY_DOMAIN.items()
}

__all__ = ["DOMAIN_READS", "RULES", "RULES_BY_DOMAIN", "Case", "Fired", "Missing", "Rule"]
