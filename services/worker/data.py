"""Work for the built-in agents: customer records and incident reports from Faker, seeded.

``malformed_ratio`` turns that share of items into the kind of broken input real pipelines see
(missing fields, wrong types, truncated text), which the agents must reject and retry.
"""

from __future__ import annotations

import random
from typing import Any

from faker import Faker

SYSTEMS = ("payments API", "checkout service", "identity provider", "data warehouse", "CDN edge")
CAUSES = (
    "a certificate expired",
    "a bad configuration push",
    "a database failover stalled",
    "a dependency returned malformed responses",
    "disk filled on a primary node",
)
IMPACTS = (
    "customers saw intermittent errors",
    "a partial outage affected EU traffic",
    "a minor cosmetic glitch appeared on invoices",
    "batch jobs were delayed by two hours",
    "a suspected data loss was investigated",
)


class Generator:
    """Deterministic for a given seed, so a run can be reproduced."""

    def __init__(self, seed: int) -> None:
        self.faker = Faker()
        self.faker.seed_instance(seed)
        self.rng = random.Random(seed)

    def customers(self, count: int, malformed_ratio: float = 0.0) -> list[dict[str, Any]]:
        return [self._maybe_break(self._customer(), malformed_ratio) for _ in range(count)]

    def _customer(self) -> dict[str, Any]:
        f = self.faker
        return {
            "customer_id": f.uuid4()[:8],
            "name": f.name(),
            "email": f.email(),
            "country": f.country_code(),
            "age": self.rng.randint(19, 85),
            "annual_income": self.rng.randint(18_000, 250_000),
            "credit_score": self.rng.randint(480, 840),
            "debt_to_income": round(self.rng.uniform(0.05, 0.65), 2),
            "late_payments_12m": self.rng.choice((0, 0, 0, 1, 1, 2, 4)),
            "account_age_months": self.rng.randint(1, 240),
        }

    def _maybe_break(self, record: dict[str, Any], ratio: float) -> dict[str, Any]:
        if self.rng.random() >= ratio:
            return record
        broken = dict(record)
        damage = self.rng.choice(("drop", "type", "null"))
        if damage == "drop":
            broken.pop("credit_score")
        elif damage == "type":
            broken["debt_to_income"] = "N/A"
        else:
            broken["late_payments_12m"] = None
        return broken

    def incident_reports(self, count: int, malformed_ratio: float = 0.0) -> list[str]:
        return [self._maybe_garble(self._report(), malformed_ratio) for _ in range(count)]

    def _report(self) -> str:
        f, rng = self.faker, self.rng
        system, cause, impact = rng.choice(SYSTEMS), rng.choice(CAUSES), rng.choice(IMPACTS)
        minutes = rng.randint(4, 240)
        return (
            f"At {f.time()} UTC the {system} degraded after {cause}. "
            f"For {minutes} minutes {impact}. "
            f"On-call engineer {f.name()} was paged and opened a bridge. "
            f"The team rolled back the change and verified recovery with synthetic checks."
        )

    def _maybe_garble(self, report: str, ratio: float) -> str:
        if self.rng.random() >= ratio:
            return report
        return report[: self.rng.randint(0, 12)].replace(".", "")
