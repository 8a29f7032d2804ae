"""What a special scenario (one with its own procedure) hands to the report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bench.runner import ScenarioResult
from bench.scenarios import Special


@dataclass(frozen=True)
class Check:
    """One target of a special scenario, already judged."""

    label: str
    limit: str
    value: float | None
    passed: bool

    @classmethod
    def of(
        cls, label: str, limit: str, value: float | None, passes: Callable[[float], bool]
    ) -> Check:
        return cls(label, limit, value, value is not None and passes(value))


@dataclass
class SpecialResult:
    """A special scenario's figures (JSON-ready), its lines in the report, and its targets.
    `parts` are regular direct-vs-gateway measurements it ran along the way."""

    scenario: Special
    lines: list[str]
    figures: dict[str, object]
    checks: list[Check]
    parts: list[ScenarioResult] = field(default_factory=list)


def row(label: str, value: str, note: str = "") -> str:
    """One line of a special scenario's block."""
    return f"  {label:<36}{value:>18}  {note}".rstrip()


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"
