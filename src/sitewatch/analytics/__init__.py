"""Analytics: rules (and, later, anomaly models) that turn readings and events into findings.

The seam is the contract's ``Finding``; ``Engine`` is what the live service and the evaluation run
(docs/analytics.md); ``sitewatch analytics run`` is the live service (docs/analytics-service.md).
"""

from .engine import Engine, Site
from .rules import RulesError, RuleSet, load_rules, parse_rules

__all__ = ["Engine", "RuleSet", "RulesError", "Site", "load_rules", "parse_rules"]
