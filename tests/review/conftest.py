"""Fixtures for the reviewers' side: cases with real document files (tests/factories.py)."""

from __future__ import annotations

import pytest

from tests.factories import ReviewFactory


@pytest.fixture
def english(app):
    """A request context in English, for calling services directly and reading their messages."""
    with app.test_request_context(headers={"Accept-Language": "en"}):
        yield


@pytest.fixture
def review(make, now):
    return ReviewFactory(make, now)
