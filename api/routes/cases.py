"""Cases grouping alerts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from soclite.api import cases
from soclite.api.deps import AnalystDep, ReaderDep, RuntimeDep, ScopeDep
from soclite.errors import RequestError, TooLarge

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])


@router.get("")
def list_cases(
    runtime: RuntimeDep, scope: ScopeDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    items = cases.list_cases(runtime, scope, limit)
    return {"total": len(items), "items": items, "next": None}


@router.post("", status_code=status.HTTP_201_CREATED)
def create_case(body: cases.CaseCreate, runtime: RuntimeDep, principal: AnalystDep, scope: ScopeDep) -> dict[str, Any]:
    return cases.create(runtime, principal, body, scope)


@router.get("/{case_id}")
def get_case(case_id: str, runtime: RuntimeDep, scope: ScopeDep) -> dict[str, Any]:
    """The case with its tasks and history (changes, comments, tasks, alerts added)."""
    return cases.detail(runtime, case_id, scope)


@router.patch("/{case_id}")
def patch_case(
    case_id: str, body: cases.CasePatch, runtime: RuntimeDep, principal: AnalystDep, scope: ScopeDep
) -> dict[str, Any]:
    return cases.update(runtime, principal, case_id, body, scope)


class AddAlerts(BaseModel):
    model_config = {"extra": "forbid"}

    alert_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(min_length=1, max_length=1000)


@router.post("/{case_id}/alerts")
def add_alerts(
    case_id: str, body: AddAlerts, runtime: RuntimeDep, principal: AnalystDep, scope: ScopeDep
) -> dict[str, Any]:
    return cases.add_alerts(runtime, principal, case_id, body.alert_ids, scope)


class CommentBody(BaseModel):
    model_config = {"extra": "forbid"}

    body: str = Field(min_length=1, max_length=20000)


@router.post("/{case_id}/comments", status_code=status.HTTP_201_CREATED)
def add_comment(
    case_id: str, body: CommentBody, runtime: RuntimeDep, principal: AnalystDep, scope: ScopeDep
) -> dict[str, Any]:
    return cases.comment(runtime, principal, case_id, body.body, scope)


@router.post("/{case_id}/tasks", status_code=status.HTTP_201_CREATED)
def add_task(
    case_id: str, body: cases.TaskCreate, runtime: RuntimeDep, principal: AnalystDep, scope: ScopeDep
) -> dict[str, Any]:
    return cases.add_task(runtime, principal, case_id, body, scope)


class TaskPatch(BaseModel):
    model_config = {"extra": "forbid"}

    done: bool


@router.patch("/{case_id}/tasks/{task_id}")
def patch_task(
    case_id: str, task_id: str, body: TaskPatch, runtime: RuntimeDep, principal: AnalystDep, scope: ScopeDep
) -> dict[str, Any]:
    return cases.set_task_done(runtime, principal, case_id, task_id, body.done, scope)


# --- attachments -------------------------------------------------------------------------------

#: room for the multipart envelope (boundaries, part headers) around the file itself
MULTIPART_OVERHEAD = 16 * 1024


async def upload_of(request: Request, limit: int) -> tuple[UploadFile, dict[str, str]]:
    """The one file part (``file``) of a multipart upload and its text fields.

    A declared Content-Length past the limit is refused before a byte of the body is read; a body
    without one (chunked) is still counted as it is copied (:meth:`CaseAttachments.add`).
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise TooLarge(f"the file is larger than the limit of {limit} bytes",
                       msgid="The file is larger than the limit of %(limit)s bytes.", params={"limit": str(limit)})
    form = await request.form(max_files=1, max_fields=20)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise RequestError("send the file as the multipart part named 'file'",
                           msgid="Choose a file to attach.")  # fmt: skip
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    return upload, fields


@router.post("/{case_id}/attachments", status_code=status.HTTP_201_CREATED)
async def add_attachment(
    case_id: str, request: Request, runtime: RuntimeDep, principal: AnalystDep, scope: ScopeDep
) -> dict[str, Any]:
    """Multipart ``file``: kept if its content's type is allowed and it is within ``cases.attachment_max_bytes``."""
    upload, _ = await upload_of(request, runtime.settings.cases.attachment_max_bytes)
    try:
        return await run_in_threadpool(cases.add_attachment, runtime, principal, case_id, upload.filename or "",
                                       upload.file, scope)  # fmt: skip
    finally:
        await upload.close()


@router.get("/{case_id}/attachments")
def list_attachments(case_id: str, runtime: RuntimeDep, scope: ScopeDep) -> dict[str, Any]:
    items = cases.attachments(runtime, case_id, scope)
    return {"total": len(items), "items": items, "next": None}


def attachment_response(row: dict[str, Any], path: Any) -> Response:
    """The file as a download, never shown inline: a crafted HTML or SVG cannot run in the console's origin."""
    return FileResponse(path, media_type=row["media_type"], filename=row["name"],
                        content_disposition_type="attachment",
                        headers={"X-Content-Type-Options": "nosniff", "X-Checksum-SHA256": row["sha256"],
                                 "Content-Security-Policy": "default-src 'none'; sandbox"})  # fmt: skip


@router.get("/{case_id}/attachments/{attachment_id}")
def download_attachment(case_id: str, attachment_id: str, runtime: RuntimeDep, scope: ScopeDep) -> Response:
    row, path = cases.open_attachment(runtime, case_id, attachment_id, scope)
    return attachment_response(row, path)


@router.delete("/{case_id}/attachments/{attachment_id}")
def delete_attachment(
    case_id: str, attachment_id: str, runtime: RuntimeDep, principal: AnalystDep, scope: ScopeDep
) -> dict[str, Any]:
    return cases.delete_attachment(runtime, principal, case_id, attachment_id, scope)


# --- the export for the incident report --------------------------------------------------------


@router.get("/{case_id}/export")
def export_case(case_id: str, runtime: RuntimeDep, principal: ReaderDep, scope: ScopeDep) -> dict[str, Any]:
    """The case, its alerts, hosts and attachments' hashes as JSON (the web UI also offers it as a page)."""
    return cases.export(runtime, principal, case_id, scope)
