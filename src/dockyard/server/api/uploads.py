"""How an upload session is described over HTTP: its URL and progress headers."""

from __future__ import annotations

from ..storage.records import UploadState

#: Smallest PATCH chunk a client is asked to send (``OCI-Chunk-Min-Length``); the last one may be shorter.
CHUNK_MIN_LENGTH = 0


def upload_location(name: str, upload_id: str) -> str:
    """The relative URL of an upload session."""
    return f"/v2/{name}/blobs/uploads/{upload_id}"


def upload_headers(state: UploadState) -> dict[str, str]:
    """Headers describing an upload session's progress (``Location``, ``Range``, ``Docker-Upload-UUID``)."""
    return {
        "Location": upload_location(state.repository, state.id),
        "Range": f"0-{max(state.offset - 1, 0)}",
        "Docker-Upload-UUID": state.id,
    }
