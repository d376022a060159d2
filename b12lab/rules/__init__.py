"""The rule catalogue: one module per domain, registered in catalogue order."""

from b12lab.rules import (  # noqa: F401
    b12,
    blood_count,
    ferritin,
    neutrophils,
    platelets,
    timeline,
)
from b12lab.rules.base import RULES, Case, Fired, Missing, Rule

__all__ = ["RULES", "Case", "Fired", "Missing", "Rule"]
