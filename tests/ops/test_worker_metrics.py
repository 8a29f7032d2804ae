"""`/metrics` of a gateway with several workers: whichever worker answers the scrape
reports the sum over all of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.deployments import entry
from tests.e2e.fakes.openai_compat import FakeUpstream
from tests.ops.configs import gateway_config
from tests.ops.traffic import metric_value, requests_by_worker, scrape, send_chats
from tests.processes import CLEAN_EXIT, Gateways

pytestmark = pytest.mark.e2e

SERVED = 14
UNKNOWN = 4


def test_any_worker_reports_the_requests_of_all_workers(
    upstream: FakeUpstream, gateways: Gateways, tmp_path: Path
) -> None:
    # `python -m app` makes its own multiprocess directory under TMPDIR; here, one we can see.
    gateway = gateways.start(
        gateway_config([entry("vision", upstream, upstream_model="up-vision")]),
        workers=2,
        env={"TMPDIR": str(tmp_path)},
    )
    [metrics_dir] = tmp_path.glob("vision-gateway-metrics-*")

    served = send_chats([gateway.url], "vision", SERVED)
    unknown = send_chats([gateway.url], "no-such-model", UNKNOWN)
    by_worker = requests_by_worker(metrics_dir, SERVED + UNKNOWN)
    scrapes = [scrape(gateway.url) for _ in range(8)]

    assert [response.status_code for response in served] == [200] * SERVED
    assert [response.status_code for response in unknown] == [404] * UNKNOWN
    assert len(by_worker) == 2
    assert all(count > 0 for count in by_worker.values()), by_worker
    for exposition in scrapes:
        assert metric_value(exposition, "gateway_requests_total") == SERVED + UNKNOWN
        assert metric_value(exposition, "gateway_requests_total", status="200") == SERVED
        assert metric_value(exposition, "gateway_requests_total", status="404") == UNKNOWN
        assert metric_value(exposition, "gateway_in_flight_requests") == 0

    assert gateway.stop() in CLEAN_EXIT
    assert not metrics_dir.exists()
