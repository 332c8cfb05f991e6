"""B4 client operations, each run by :mod:`benchmarks.worker` in a process of its own, with an Entra-ID-style
stand-in credential; each times only the listing itself."""

from __future__ import annotations

from typing import Any

from tests.support.credentials import CountingCredential

from benchmarks.clientside import Stopwatch


def _walk(pager: Any) -> int:
    count = 0
    for tag in pager:
        # Touch the properties a caller would read.
        _ = (tag.name, tag.digest, tag.last_updated_on, tag.can_delete)
        count += 1
    return count


def list_dockyard(url: str, repo: str, per_page: int | None) -> dict[str, Any]:
    from dockyard import ContainerRegistryClient

    credential = CountingCredential()
    client = ContainerRegistryClient(url, credential)
    with Stopwatch() as sw:
        count = _walk(client.list_tag_properties(repo, results_per_page=per_page))
    client.close()
    return {"seconds": sw.seconds, "count": count, "get_token_calls": credential.count}


def list_azure(url: str, repo: str, per_page: int | None) -> dict[str, Any]:
    from azure.containerregistry import ContainerRegistryClient

    credential = CountingCredential()
    client = ContainerRegistryClient(url, credential)
    with Stopwatch() as sw:
        count = _walk(client.list_tag_properties(repo, results_per_page=per_page, enforce_https=False))
    client.close()
    return {"seconds": sw.seconds, "count": count, "get_token_calls": credential.count}
