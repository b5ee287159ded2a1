"""One error tree, one handler: the HTTP status of an error is chosen by its type, never by its message."""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from soclite import errors
from soclite.api.app import ERROR_STATUS, create_app, error_status
from soclite.errors import (
    AuthError,
    BindingConflict,
    ConfigError,
    ConflictError,
    ConnectorError,
    InvalidCursor,
    InvalidSavedSearch,
    InvalidTime,
    JournalError,
    LoginRequired,
    NotFoundError,
    ParseError,
    PlaybookError,
    ReportError,
    RequestError,
    RuleError,
    SchemaError,
    SocliteError,
    StoreError,
    TemplateError,
    TooLarge,
    TransitionConflict,
    TriageError,
    UnsupportedType,
)
from soclite.models import Host
from soclite.runtime import Runtime
from tests.api.conftest import TestClient, auth

ROOT = Path(__file__).resolve().parents[2]

#: one error per mapping, with messages that mislead a handler reading the text ("cursor" where it is not
#: a cursor problem, none where it is), and the status the type must get
CASES: list[tuple[SocliteError, int]] = [
    (SocliteError("raised on purpose, caught by nobody"), 500),
    (ConfigError("missing", key="store.kind"), 500),
    (SchemaError("schema version 99 is newer than this code (cursor table)"), 500),
    (RequestError("the page cursor is fine, the request is not"), 400),
    (InvalidCursor("page token made for another sort order"), 400),
    (ParseError("not JSON", source="upload", line=3), 400),
    (AuthError("role viewer may not do that"), 403),
    (NotFoundError("alert a1 not found (cursor x)"), 404),
    (ConflictError("already taken"), 409),
    (BindingConflict(Host(id="h1", name="H1", unit="SO"), "bound to agent a-9"), 409),
    (TransitionConflict("cannot change status from resolved to acknowledged"), 409),
    (TriageError("close_reason is required to set status resolved"), 422),
    (TooLarge("the file is larger than the limit of 4096 bytes"), 413),
    (UnsupportedType("the file is a program (application/x-executable)"), 415),
    (InvalidSavedSearch("a saved search needs a name"), 422),
    (InvalidTime("invalid datetime 'yesterday' for 'from'", value="yesterday"), 422),
    (RuleError("does not compile", source="r.yml", line=4), 422),
    (PlaybookError("unknown action"), 422),
    (TemplateError("unknown field 'x'"), 422),
    (ConnectorError("national system answered 500"), 502),
    (StoreError("database is locked while reading the cursor"), 503),
    (JournalError("disk bound reached"), 503),
    (ReportError("cannot render"), 500),  # not listed: its nearest listed base, SocliteError
]


@pytest.fixture
def probe(runtime: Runtime) -> Iterator[tuple[FastAPI, TestClient]]:
    """The real app, plus one route that raises whatever error the test puts in ``app.state.raise_me``."""
    app = create_app(runtime)

    def boom() -> None:
        raise app.state.raise_me

    app.add_api_route("/probe", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield app, client


@pytest.mark.parametrize(("exc", "code"), CASES, ids=[f"{type(e).__name__}-{c}" for e, c in CASES])
def test_status_by_type_through_the_app(probe: tuple[FastAPI, TestClient], exc: SocliteError, code: int) -> None:
    app, client = probe
    app.state.raise_me = exc
    r = client.get("/probe")
    assert r.status_code == code, r.text
    assert r.headers["content-type"] == "application/json"
    detail = r.json()["detail"]
    if code < 500:
        assert detail == str(exc)  # the caller's to fix: say what is wrong
    elif code in (502, 503):
        assert str(exc) in detail
    else:
        assert detail == "Internal Server Error" and str(exc) not in detail  # the log has it, not the caller


def test_every_mapping_has_a_case() -> None:
    assert set(ERROR_STATUS) <= {type(exc) for exc, _ in CASES}
    for exc, code in CASES:
        assert error_status(exc) == code


def test_most_specific_class_wins() -> None:
    assert issubclass(InvalidCursor, StoreError) and ERROR_STATUS[StoreError] == 503
    assert error_status(InvalidCursor("x")) == 400
    assert issubclass(TransitionConflict, TriageError) and error_status(TriageError("x")) == 422
    assert error_status(TransitionConflict("x")) == 409


def test_real_routes(seeded: dict[str, list[str]], client: TestClient, tokens: dict[str, str]) -> None:
    h = auth(tokens["analyst"])
    alert = seeded["SO"][0]
    r = client.get("/api/v1/alerts?cursor=AAAA", headers=h)  # decodes, but not to this query's cursor
    assert r.status_code == 400 and "invalid page cursor" in r.json()["detail"]
    r = client.patch(f"/api/v1/alerts/{alert}", headers=h, json={"status": "resolved"})
    assert r.status_code == 422 and "close_reason" in r.json()["detail"]
    r = client.patch(f"/api/v1/alerts/{alert}", headers=h, json={"status": "resolved", "close_reason": "benign"})
    assert r.status_code == 200, r.text
    r = client.patch(f"/api/v1/alerts/{alert}", headers=h, json={"status": "acknowledged"})
    assert r.status_code == 409 and "cannot change status" in r.json()["detail"]
    r = client.post(f"/api/v1/alerts/{alert}/comments", headers=h, json={"body": "   "})
    assert r.status_code == 422 and "empty" in r.json()["detail"]
    assert client.get("/api/v1/alerts/nope", headers=h).status_code == 404


def test_ui_errors_keep_their_own_handlers(client: TestClient) -> None:
    """LoginRequired is an AuthError (403 in the table) but the UI's more specific handler redirects."""
    assert issubclass(LoginRequired, AuthError)
    r = client.get("/alerts", follow_redirects=False)
    assert r.status_code in (302, 303) and "/login" in r.headers["location"]


def test_every_project_exception_derives_from_soclite_error() -> None:
    builtin_errors = {name for name, value in vars(builtins).items()
                      if isinstance(value, type) and issubclass(value, BaseException)}
    outside = []
    for top in ("api", "collectors", "correlator", "playbooks", "soclite"):
        for path in (ROOT / top).rglob("*.py"):
            if top == "soclite" and path.relative_to(ROOT / "soclite").parts[0] in ("api", "collectors",
                                                                                   "correlator", "playbooks"):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef) and any(
                        isinstance(b, ast.Name) and b.id in builtin_errors for b in node.bases):
                    outside.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert [o for o in outside if not o.startswith("soclite/errors.py:")] == []
    assert [o.split()[-1] for o in outside] == ["SocliteError"]
    assert all(issubclass(cls, SocliteError) for cls in vars(errors).values()
               if isinstance(cls, type) and issubclass(cls, Exception))


def _cursor(values: object) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/actions?before=99999999999999999999",
        "/api/v1/deadletters?cursor=99999999999999999999",
        "/api/v1/audit?cursor=" + _cursor([1e308]),
        "/api/v1/audit?cursor=" + _cursor([2**70]),
        "/api/v1/audit?cursor=" + _cursor(["not-a-seq"]),
        "/api/v1/hosts?cursor=" + _cursor([{"id": "x"}]),
        "/api/v1/hosts?cursor=" + _cursor([[1, 2]]),
        "/api/v1/hosts?cursor=" + _cursor([7]),
        "/api/v1/events?cursor=" + _cursor(["2026-01-01", 2**70]),
        "/api/v1/events?cursor=" + _cursor([{"a": 1}, 1]),
        "/api/v1/alerts?cursor=" + _cursor([{"a": 1}, 1]),
    ],
)
def test_out_of_range_or_tampered_paging_is_the_callers_error(
    url: str, client: TestClient, tokens: dict[str, str], seeded: dict[str, list[str]], runtime: Runtime
) -> None:
    """Issue 13 item 11: integers past 64 bits and tampered cursors were 500/503 with the database path."""
    response = client.get(url, headers=auth(tokens["admin"]))
    assert response.status_code in (400, 422), (url, response.status_code, response.text)
    text = response.text
    assert str(runtime.settings.data_dir) not in text and "sqlite" not in text.lower() and "Traceback" not in text
