"""Response and item ids: unique, OpenAI-shaped, and cheap in calls for random bytes."""

from __future__ import annotations

import os
import random
import re

import pytest

from app.responses import ids
from app.responses.ids import new_id


def test_ids_are_the_prefix_and_48_hex_digits_and_never_repeat() -> None:
    made = [new_id("msg") for _ in range(3 * ids.BATCH + 5)]
    assert all(re.fullmatch(r"msg_[0-9a-f]{48}", made_id) for made_id in made)
    assert len(set(made)) == len(made)


def test_one_call_for_random_bytes_serves_a_batch_of_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    random_bytes = os.urandom

    def urandom(size: int) -> bytes:
        calls.append(size)
        return random_bytes(size)

    monkeypatch.setattr(os, "urandom", urandom)
    monkeypatch.setattr(random, "_urandom", urandom)  # what `secrets` draws from
    for _ in range(ids.BATCH):
        new_id("resp")
    assert len(calls) <= 1


def test_a_forked_child_never_hands_out_its_parents_ids() -> None:
    new_id("resp")  # the parent now holds ready ids
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(writer, new_id("resp").encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(child, 0)
    with os.fdopen(reader, "rb") as pipe:
        childs = pipe.read().decode()
    parents = [new_id("resp") for _ in range(ids.BATCH)]
    assert childs.startswith("resp_")
    assert childs not in parents
