"""schemathesis against the service's own OpenAPI document, as the demo Workspace Admin.

Every operation gets requests drawn from its schema (valid and invalid ones): no 5xx, every
answer declared (status, content type, body schema, headers), invalid input refused, valid
input not refused for being invalid.

Two choices, and why:

* Driven through schemathesis's Python API (``as_strategy`` + ``call_and_validate``), one
  subtest per operation. Its pytest plugin needs the schema at import time, or goes through
  ``from_fixture``, which reads ``request.node._nodeid``: an attribute pytest 9 removed.
* The connection test and the test send are left out: they open sockets to the host in the
  body, anywhere the egress guard allows. tests/hostile/test_api_bodies.py sends hostile
  bodies to the connection test, aimed at a closed local port.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.service import RunningService
from tests.hostile.conftest import ADMIN

# Schemathesis calls every operation with generated requests.
pytestmark = pytest.mark.slow

# Until the test extra lists it, a missing schemathesis skips this module (and says why)
# rather than breaking the collection of every other test.
schemathesis = pytest.importorskip(
    "schemathesis", reason="schemathesis is not installed: pip install 'schemathesis>=4.32,<5'"
)
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.core.result import Ok  # noqa: E402

CONTRACT = settings(
    max_examples=25,  # per operation, valid and invalid requests together
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
#: Operations that send network traffic to the hosts their bodies name.
SENDS_TRAFFIC = r"/email-servers(/[^/]+)?/(test|send-test)$"
#: OAuth 2.0 (RFC 6749, 5.2) answers a bad grant with 400 and an `error` code, so the sign-in
#: form declares its fields optional (FastAPI would answer 422 for a missing one): an empty
#: form is schema-valid and still refused. Every other check applies to it.
OAUTH_TOKEN = "POST /identityprovider/connect/token"


@pytest.fixture(scope="module")
def operations(hostile_service: RunningService) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{hostile_service.url}/api/v1/openapi.json")
    found = []
    for result in schema.exclude(path_regex=SENDS_TRAFFIC).get_all_operations():
        # Err: a part of the document schemathesis cannot read, itself a contract failure.
        assert isinstance(result, Ok), result.err()
        found.append(result.ok())
    # A document that lost its paths would pass every check below: count them.
    assert len(found) >= 20, [op.label for op in found]
    return found


def _fuzz(operation: Any, auth: dict[str, str], excluded: list[Any]) -> None:
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @CONTRACT
    @given(case=cases)
    def run(case: Any) -> None:
        case.call_and_validate(headers=auth, excluded_checks=excluded, timeout=10)

    run()


def test_every_operation_keeps_its_contract(
    operations: list[Any], hostile_service: RunningService, subtests: pytest.Subtests
) -> None:
    auth = {"Authorization": f"Bearer {hostile_service.tokens[ADMIN]}"}
    for operation in operations:
        excluded = (
            [schemathesis.checks.positive_data_acceptance] if operation.label == OAUTH_TOKEN else []
        )
        with subtests.test(msg=operation.label):
            _fuzz(operation, auth, excluded)
