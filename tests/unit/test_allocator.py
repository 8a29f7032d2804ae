"""The allocator settings take on glibc, and are harmless to apply twice."""

from __future__ import annotations

import platform

import pytest

from app.server.allocator import release_large_buffers


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the settings exist on glibc only")
def test_the_settings_take_on_glibc() -> None:
    assert release_large_buffers() is True
    assert release_large_buffers() is True
