"""Property-based run of schemathesis over the whole OpenAPI document (/api/v1/openapi.json),
through the ASGI app: no operation may answer 5xx, and every documented response must match
its schema. Valid and invalid inputs are generated, 15 examples per operation each, so the
run stays within CI's budget.

(schemathesis' own ``from_fixture`` lazy loader breaks on pytest 9, hence the explicit loop
over the operations with Hypothesis' ``@given``.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlmodel import Session

from tests.factories import make_campaign
from tests.gallery_support import approved

SEEDED_SLUG = "schema-demo"
CHECKS = [not_a_server_error, response_schema_conformance]
EXAMPLES = 15


@pytest.fixture
def api_schema(app: Any, session: Session) -> Iterator[Any]:
    """The app's OpenAPI schema, loaded over ASGI, with a campaign that has public items."""
    campaign = make_campaign(session, slug=SEEDED_SLUG, translations={"ru": {"name": "Демо"}})
    for n in range(3):
        approved(session, campaign, city="Almaty", language="ru", author_name=f"Person {n}")
    with TestClient(app):  # run the lifespan (HTTP client, state) like a real server
        yield schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)


def check_operation(operation: Any, mode: GenerationMode) -> None:
    """Generate cases for one operation and validate every response."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(checks=CHECKS)
        # Random slugs only reach "not found": run the same case against a real campaign too.
        if "slug" in (case.path_parameters or {}):
            case.path_parameters["slug"] = SEEDED_SLUG
            case.call_and_validate(checks=CHECKS)

    run()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_whole_api_conforms_to_its_schema(api_schema: Any, mode: GenerationMode) -> None:
    failures: list[str] = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        try:
            check_operation(operation, mode)
        except Unsatisfiable:
            # Nothing about this operation can be made invalid (e.g. no parameters at all).
            assert mode == GenerationMode.NEGATIVE, operation.label
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then fail
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert operations >= 3  # the read API at least
    assert not failures, "\n\n".join(failures)
