"""The published AsyncAPI document is the one the contracts generate."""

from __future__ import annotations

from pathlib import Path

from shared.asyncapi import build_document, render
from shared.events import EVENT_TYPES

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.json"


def test_docs_asyncapi_json_is_current() -> None:
    assert DOCUMENT.read_text() == render(), "run: herald asyncapi > docs/asyncapi.json"


def test_every_event_of_the_catalogue_is_published_with_its_camelcase_schema() -> None:
    document = build_document()
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert set(EVENT_TYPES) <= addresses
    job_due = document["components"]["schemas"]["JobDue"]["properties"]
    assert {"eventId", "executionId", "windowStart", "windowEnd", "deadline"} <= set(job_due)
