"""Shared fixtures and helpers for the test suite."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def require_binary(name: str) -> str:
    """Path of an external binary; skip when absent, fail when REQUIRE_PROMTOOL=1 (CI)."""
    path = shutil.which(name)
    if path:
        return path
    reason = f"{name} not found on PATH (install Debian's prometheus package)"
    if os.environ.get("REQUIRE_PROMTOOL") == "1":
        pytest.fail(f"{reason}; REQUIRE_PROMTOOL=1 makes this a failure")
    pytest.skip(reason)


@pytest.fixture
def promtool() -> str:
    return require_binary("promtool")


@pytest.fixture
def repo() -> Path:
    return REPO
