"""Property-based: every operation of the OpenAPI schema, fed generated input, never answers 5xx.

schemathesis generates requests from the app's own /openapi.json and sends
them to the ASGI app in-process. Every operation runs, the ingest journal
included (so dead letters and ingest are exercised, not answered 503), with
enough examples per operation to reach out-of-range integers and tampered
cursors; derandomized, it takes well under two minutes.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's TestClient asks for httpx2 on import
    import starlette.testclient  # noqa: F401

import schemathesis
from schemathesis.generation import GenerationMode

from soclite.api.app import create_app
from soclite.runtime import Runtime
from tests.api.conftest import TestClient

#: examples per operation: valid input (positive) and input that breaks the schema (negative: out-of-range
#: integers, wrong types, missing fields), which must be a 4xx, never a 5xx
MAX_EXAMPLES = {"positive": 30, "negative": 20}
#: 503 is the honest answer when a part that runs in the full server is absent here; the detail must say so.
ABSENT_PART = ("not running", "not available")


def test_openapi_schema_no_server_errors(runtime: Runtime, seeded: dict[str, list[str]], tmp_path: Path) -> None:
    from soclite.correlator.engine import Engine
    from soclite.playbooks.outbox import Outbox
    from soclite.store.journal import Journal

    runtime.settings.correlator.rules = [tmp_path / "no-rules"]
    (tmp_path / "no-rules").mkdir()
    runtime.engine = Engine.from_settings(runtime.settings, state_dir=tmp_path / "state")
    runtime.outbox = Outbox(runtime.control)
    runtime.journal = Journal.from_settings(runtime.settings)
    token = runtime.identity.create_token(role="admin", name="fuzz")
    app = create_app(runtime)
    # /openapi.json is behind login (issue 13 item 8): the loader sends the token too.
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers={"Authorization": f"Bearer {token}"})
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(operation, mode, token, runtime, failures)
    runtime.outbox.close()
    runtime.engine.close()
    runtime.journal.close()
    print(f"schemathesis: {operations} operations, {len(failures)} failures")
    assert operations >= 15
    assert not failures, "\n".join(failures[:10])


def _fuzz(operation: Any, mode: GenerationMode, token: str, runtime: Runtime, failures: list[str]) -> None:
    """Fuzz one operation in one generation mode; a 5xx or a leaked path is appended to ``failures``."""
    @settings(max_examples=MAX_EXAMPLES[mode.value], deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        try:
            response = case.call(headers={"Authorization": f"Bearer {token}"})
        except Exception as exc:  # an unhandled exception in the app is a 500 the client would see
            failures.append(f"{case.method} {case.formatted_path} {case.query} -> 500: {exc!r}"[:400])
            return
        if str(runtime.settings.data_dir) in response.text:  # no internal detail in any answer
            failures.append(f"{case.method} {case.formatted_path} {case.query} leaks the data directory")
        if response.status_code >= 500:
            text = response.text
            if response.status_code == 503 and any(word in text for word in ABSENT_PART):
                return
            failures.append(f"{case.method} {case.formatted_path} {case.query} -> {response.status_code}: {text[:300]}")

    with contextlib.suppress(Unsatisfiable):  # an operation with nothing to break (no parameters, no body)
        check()


@pytest.mark.parametrize("path", ["/openapi.json"])
def test_schema_documents_the_contract(path: str, client: Any, tokens: dict[str, str]) -> None:
    assert client.get(path).status_code == 401  # behind login unless auth.public_docs
    doc = client.get(path, headers={"Authorization": f"Bearer {tokens['viewer']}"}).json()
    params = {p["name"] for p in doc["paths"]["/api/v1/alerts"]["get"]["parameters"]}
    assert {"host", "q", "from", "to", "limit", "severity", "status", "rule_id", "unit", "cursor"} <= params
    assert "patch" in doc["paths"]["/api/v1/alerts/{alert_id}"]
    assert {"/api/v1/hosts/{host_id}/isolate", "/api/v1/stats/summary", "/api/v1/audit"} <= set(doc["paths"])


def _cursor(values: Any) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


#: What a random generator rarely reaches and item 11 of issue 13 found: integers past 64 bits and
#: cursors that decode to the wrong types. Every query parameter of every GET gets them.
EDGE_INTEGERS = ("99999999999999999999", "-99999999999999999999", "1e308")
EDGE_CURSORS = (_cursor([1e308]), _cursor([2**70]), _cursor([{"a": 1}]), _cursor(["x", {"a": 1}]),
                _cursor([[1], "x", None]), "%%%", "W10")


def _is_integer(schema: dict[str, Any]) -> bool:
    kinds = [schema, *schema.get("anyOf", [])]
    return any(k.get("type") == "integer" for k in kinds)


def test_edge_values_in_every_query_parameter(runtime: Runtime, seeded: dict[str, list[str]], tmp_path: Path) -> None:
    from soclite.store.journal import Journal

    runtime.journal = Journal.from_settings(runtime.settings)
    token = runtime.identity.create_token(role="admin", name="edges")
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    sent = 0
    with TestClient(create_app(runtime)) as client:
        doc = client.get("/openapi.json", headers=headers).json()
        for path, item in doc["paths"].items():
            get = item.get("get")
            if get is None:
                continue
            url = re.sub(r"\{[^}]+\}", "x", path)
            for param in get.get("parameters", []):
                if param["in"] != "query":
                    continue
                name, schema = param["name"], param.get("schema", {})
                values = list(EDGE_INTEGERS) if _is_integer(schema) else []
                if name in ("cursor", "before", "after"):
                    values += EDGE_CURSORS
                for value in values:
                    sent += 1
                    response = client.get(url, params={name: value}, headers=headers)
                    text = response.text
                    if response.status_code >= 500 or str(runtime.settings.data_dir) in text:
                        failures.append(f"GET {url}?{name}={value} -> {response.status_code}: {text[:200]}")
    runtime.journal.close()
    assert sent >= 20
    assert not failures, "\n".join(failures)
