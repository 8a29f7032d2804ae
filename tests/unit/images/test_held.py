"""Fetched bytes held per request and per worker, let go of when the request ends."""

from __future__ import annotations

import pytest

from app.errors import ImageTooLarge, ServerBusy
from app.images.held import FetchedBytes
from app.observe.record import RequestRecord


def test_a_request_holds_its_own_budget_and_the_worker_all_of_theirs() -> None:
    held = FetchedBytes(per_request=100, per_worker=250)
    first, second, third = RequestRecord(), RequestRecord(), RequestRecord()
    held.take(first, 100)
    with pytest.raises(ImageTooLarge, match="max_fetched_bytes_per_request"):
        held.take(first, 1)
    held.take(second, 100)
    held.take(third, 50)

    with pytest.raises(ServerBusy) as busy:
        held.take(third, 1)
    assert busy.value.headers == {"Retry-After": "1"}

    first.ended = 1.0  # its bytes go once room is short
    held.take(third, 50)
    assert held.held == 200
