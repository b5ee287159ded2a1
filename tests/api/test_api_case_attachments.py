"""Case attachments over the API: type told from content, size limit, random storage names, scope, audit;
and the case export for the incident report."""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path
from typing import Any

from soclite.runtime import Runtime
from tests.api.conftest import auth

Client = Any


def png_bytes() -> bytes:
    """A real 1x1 PNG (signature, IHDR, IDAT, IEND with their CRCs)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56 + b"payload"


def new_case(client: Client, h: dict[str, str], alert_ids: list[str]) -> str:
    r = client.post("/api/v1/cases", headers=h, json={"title": "Mã độc ở Sở", "alert_ids": alert_ids, "unit": "SO"})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def stored_files(runtime: Runtime) -> list[Path]:
    folder = runtime.settings.data_dir / "attachments"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_upload_list_download_delete_with_hash_audit_and_history(
    seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str]
) -> None:
    h = auth(tokens["analyst"])
    case_id = new_case(client, h, seeded["SO"][:1])
    url = f"/api/v1/cases/{case_id}/attachments"
    data = png_bytes()
    r = client.post(url, headers=h, files={"file": ("../../ảnh chụp màn hình.txt", data, "text/plain")})
    assert r.status_code == 201, r.text
    att = r.json()
    # the type is the content's (a PNG), not the name's or the client's claim; the name loses its directories
    assert att["media_type"] == "image/png" and att["name"] == "ảnh chụp màn hình.txt"
    assert att["sha256"] == hashlib.sha256(data).hexdigest() and att["size"] == len(data)
    assert "stored_name" not in att
    [stored] = stored_files(runtime)
    assert stored.read_bytes() == data and "ảnh" not in stored.name and len(stored.name) == 32
    assert stored.stat().st_mode & 0o777 == 0o600

    listed = client.get(url, headers=h).json()
    assert listed["total"] == 1 and listed["items"][0]["sha256"] == att["sha256"]
    r = client.get(f"{url}/{att['id']}", headers=auth(tokens["viewer"]))  # readers may download
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-disposition"].startswith("attachment;")
    assert "filename*=utf-8''" in r.headers["content-disposition"].lower()
    assert r.headers["x-content-type-options"] == "nosniff"

    assert client.delete(f"{url}/{att['id']}", headers=auth(tokens["viewer"])).status_code == 403
    assert client.delete(f"{url}/{att['id']}", headers=h).status_code == 200
    assert stored_files(runtime) == [] and client.get(url, headers=h).json()["total"] == 0
    assert client.get(f"{url}/{att['id']}", headers=h).status_code == 404

    history = client.get(f"/api/v1/cases/{case_id}", headers=h).json()["history"]
    assert [e["kind"] for e in history] == ["attachment_added", "attachment_deleted"]
    assert history[0]["body"]["sha256"] == att["sha256"]
    actions = [e.action for e in runtime.store.iter_audit()]
    assert "case.attachment_add" in actions and "case.attachment_delete" in actions


def test_programs_and_unknown_types_are_refused_and_nothing_is_kept(
    seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str]
) -> None:
    h = auth(tokens["analyst"])
    case_id = new_case(client, h, seeded["SO"][:1])
    url = f"/api/v1/cases/{case_id}/attachments"
    r = client.post(url, headers=h, files={"file": ("bao-cao.pdf", ELF, "application/pdf")})
    assert r.status_code == 415 and "program" in r.json()["detail"]
    r = client.post(url, headers=h, files={"file": ("setup.docx", b"MZ\x90\x00" + b"\x00" * 200, "application/x")})
    assert r.status_code == 415
    r = client.post(url, headers=h, files={"file": ("run.txt", b"#!/bin/sh\nrm -rf /\n", "text/plain")})
    assert r.status_code == 415
    unknown = bytes(range(256)) * 4  # NULs and invalid UTF-8: no format, not text
    r = client.post(url, headers=h, files={"file": ("blob.bin", unknown, "application/octet-stream")})
    assert r.status_code == 415 and "unknown" in r.json()["detail"]
    assert stored_files(runtime) == [] and client.get(url, headers=h).json()["total"] == 0

    runtime.settings.cases.allow_unknown_types = True  # the site's choice
    r = client.post(url, headers=h, files={"file": ("blob.bin", unknown, "application/octet-stream")})
    assert r.status_code == 201 and r.json()["media_type"] == "application/octet-stream"
    r = client.post(url, headers=h, files={"file": ("log.txt", "Đăng nhập thất bại\n".encode(), "x/y")})
    assert r.status_code == 201 and r.json()["media_type"] == "text/plain"
    runtime.settings.cases.allowed_types = ["text/plain"]
    r = client.post(url, headers=h, files={"file": ("a.png", png_bytes(), "image/png")})
    assert r.status_code == 415 and "image/png" in r.json()["detail"]
    assert len(stored_files(runtime)) == 2


def test_over_the_size_limit_is_413_declared_or_counted(
    seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str]
) -> None:
    h = auth(tokens["analyst"])
    case_id = new_case(client, h, seeded["SO"][:1])
    url = f"/api/v1/cases/{case_id}/attachments"
    runtime.settings.cases.attachment_max_bytes = 4096
    # within the multipart allowance of Content-Length: refused while the copy is counted
    r = client.post(url, headers=h, files={"file": ("big.txt", b"a" * 4097, "text/plain")})
    assert r.status_code == 413 and "4096" in r.json()["detail"]
    # far past it: refused on the declared length, before the body is parsed
    r = client.post(url, headers=h, files={"file": ("huge.txt", b"a" * 200_000, "text/plain")})
    assert r.status_code == 413
    assert stored_files(runtime) == []  # no partial file left behind
    r = client.post(url, headers=h, files={"file": ("ok.txt", b"a" * 4096, "text/plain")})
    assert r.status_code == 201


def test_attachments_are_unit_scoped(
    seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str]
) -> None:
    h = auth(tokens["analyst"])
    case_id = new_case(client, h, seeded["SO"][:1])
    url = f"/api/v1/cases/{case_id}/attachments"
    att = client.post(url, headers=h, files={"file": ("a.png", png_bytes(), "image/png")}).json()
    other = auth(tokens["analyst_ha"])
    assert client.get(url, headers=other).status_code == 404
    assert client.get(f"{url}/{att['id']}", headers=other).status_code == 404
    assert client.delete(f"{url}/{att['id']}", headers=other).status_code == 404
    assert client.post(url, headers=other, files={"file": ("b.png", png_bytes(), "image/png")}).status_code == 404
    assert client.get(f"/api/v1/cases/{case_id}/export", headers=other).status_code == 404
    assert len(stored_files(runtime)) == 1
    # an attachment id of another case is not found through this one
    second = new_case(client, h, seeded["SO"][1:2])
    assert client.get(f"/api/v1/cases/{second}/attachments/{att['id']}", headers=h).status_code == 404


def test_export_for_the_incident_report(
    seeded: dict[str, list[str]], runtime: Runtime, client: Client, tokens: dict[str, str]
) -> None:
    h = auth(tokens["analyst"])
    case_id = new_case(client, h, seeded["SO"][:2])
    base = f"/api/v1/cases/{case_id}"
    client.post(f"{base}/comments", headers=h, json={"body": "Đã cách ly ổ cứng"})
    client.post(f"{base}/tasks", headers=h, json={"title": "Gửi mẫu cho VNCERT"})
    att = client.post(f"{base}/attachments", headers=h, files={"file": ("a.png", png_bytes(), "image/png")}).json()
    r = client.get(f"{base}/export", headers=auth(tokens["viewer"]))
    assert r.status_code == 200
    data = r.json()
    assert data["exported_by"] == "leader" and data["case"]["id"] == case_id
    assert sorted(a["id"] for a in data["alerts"]) == sorted(seeded["SO"][:2])
    assert {h["id"] for h in data["hosts"]} == {a["host"] for a in data["alerts"]}
    assert [t["title"] for t in data["case"]["tasks"]] == ["Gửi mẫu cho VNCERT"]
    assert any(e["kind"] == "comment" and e["body"] == "Đã cách ly ổ cứng" for e in data["case"]["history"])
    assert [a["sha256"] for a in data["case"]["attachments"]] == [att["sha256"]]
    assert "case.export" in [e.action for e in runtime.store.iter_audit()]
