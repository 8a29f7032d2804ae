"""The shipped Grafana dashboard asks only for metrics, and labels, the gateway exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client import Metric
from prometheus_client.metrics import MetricWrapperBase

from app.observe.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "vision-gateway.json"
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gauge": ("",),
}
NAME = re.compile(r"\b(gateway_[a-z_]+)\b")
GROUPING = re.compile(r"\bby \(([^)]*)\)")
MATCHER = re.compile(r"([a-z_]+)\s*(?:=~|!~|!=|=)")


def exported() -> dict[str, set[str]]:
    """Each sample name the gateway can export, with the labels it carries."""
    names: dict[str, set[str]] = {}
    for collector in vars(Metrics()).values():
        if not isinstance(collector, MetricWrapperBase):
            continue
        for family in collector.describe():
            labels = set(getattr(collector, "_labelnames", ()))
            for suffix in SUFFIXES[_kind(family)]:
                names[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


def _kind(family: Metric) -> str:
    return "gauge" if family.type in ("gauge", "unknown") else family.type


def expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    found += [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return found


def test_the_dashboard_has_the_panels_operators_ask_for() -> None:
    titles = {panel["title"] for panel in json.loads(DASHBOARD.read_text())["panels"]}

    wanted_titles = ("Requests", "Errors by code", "Latency", "first token", "Tokens by", "streams")
    for wanted in (*wanted_titles, "Response cache"):
        assert any(wanted.lower() in title.lower() for title in titles), wanted


@pytest.mark.parametrize("expression", expressions())
def test_every_query_names_exported_metrics_and_labels(expression: str) -> None:
    names = exported()
    used = NAME.findall(expression)

    assert used, expression
    assert [name for name in used if name not in names] == []
    labels = set().union(*(names[name] for name in used))
    grouped = {
        label.strip() for group in GROUPING.findall(expression) for label in group.split(",")
    }
    matched = set(MATCHER.findall(expression))
    assert (grouped | matched) - labels == set(), expression


def test_the_checks_catch_a_metric_that_does_not_exist() -> None:
    names = exported()

    assert "gateway_requests_total" in names
    assert "gateway_request_duration_seconds_bucket" in names
    assert "gateway_no_such_metric_total" not in names
    assert "model" in names["gateway_requests_total"]
