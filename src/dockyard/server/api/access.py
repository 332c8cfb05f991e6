"""Who may call which route: the one route → access table, and the guard that applies it to every route.

Each route is named, and :data:`ROUTE_ACCESS` says, per route and method, which token action it needs on the
repository in its path (or on the registry), as distribution's ``appendAccessRecords`` does. :func:`route`
builds every Starlette route of the APIs: it refuses a route the table does not cover, and wraps the endpoint
so that the name (and tag) in the path are validated and the access is checked before the endpoint runs.

Each entry's token action is one of ACR's permissions (:attr:`Need.permission`): ``pull`` is ``content/read``,
``push`` ``content/write``, ``delete`` ``content/delete``, ``metadata_read`` ``metadata/read`` and
``metadata_write`` ``metadata/write``. A caller without valid credentials is answered 401 with a challenge; a
known caller whose rights lack the action (a repository-scoped token) 403 DENIED naming the permission.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...oci.names import is_valid_repository
from .. import errors as e
from ..auth import CALLER_GRANT, SUBJECT, Access, Authenticator, Grant
from ..auth.rights import permission_of
from ..registry import check_name, check_tag
from .common import external_base_url, pull_cache, registry_host

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Need:
    """The access a route needs: ``action`` on the repository named in its path, or on ``registry:<name>``."""

    action: str
    #: ``repository`` (the path's ``{name}``) or ``registry``.
    resource: str = "repository"
    #: The registry resource's name (``catalog``); unused for repositories.
    name: str = ""
    #: Further access the request needs (a mount's pull on its source repository).
    also: Callable[[Request], list[Access]] | None = None

    @property
    def permission(self) -> str:
        """The ACR permission this entry needs (``content/read`` …; ``login`` and ``*`` stay as they are)."""
        return permission_of(self.action)

    def accesses(self, request: Request) -> list[Access]:
        """Everything ``request`` needs under this entry."""
        name = repository_name(request) if self.resource == "repository" else self.name
        return [Access(self.resource, name, self.action), *(self.also(request) if self.also else ())]


#: Set (in the ASGI scope) when the caller may never read a mount's source: the POST starts a plain upload.
MOUNT_REFUSED = "dockyard.mount_refused"


def mount_source(request: Request) -> str | None:
    """The source repository of a cross-repository mount (``?mount=<digest>&from=<name>``), if valid and readable
    by the caller (a repository-scoped token without pull on it gets a plain upload session instead, as the
    distribution spec allows, rather than a refusal)."""
    mount, source = request.query_params.get("mount"), request.query_params.get("from")
    if request.scope.get(MOUNT_REFUSED):
        return None
    return source if mount and source and is_valid_repository(source) else None


def _mount_pull(request: Request) -> list[Access]:
    """A mount reads its source: the challenge asks for both scopes, as distribution's token flow expects."""
    source = mount_source(request)
    return [Access("repository", source, "pull")] if source else []


LOGIN = Need("login", "registry")
CATALOG = Need("*", "registry", "catalog")
PULL = Need("pull")
PUSH = Need("push")
DELETE = Need("delete")
METADATA_READ = Need("metadata_read")
METADATA_WRITE = Need("metadata_write")
#: ``/metrics`` under ``--metrics-auth``: only a caller with full rights (an htpasswd user) may scrape.
METRICS = Need("*", "registry", "metrics")
#: A route anyone may call (the token endpoints authenticate by themselves).
PUBLIC = None

#: Route name → method → the access it needs. HEAD needs what GET needs.
ROUTE_ACCESS: dict[str, dict[str, Need | None]] = {
    "v2.base": {"GET": LOGIN},
    "v2.catalog": {"GET": CATALOG},
    "v2.tags": {"GET": PULL},
    "v2.manifest": {"GET": PULL, "PUT": PUSH, "DELETE": DELETE},
    "v2.blob": {"GET": PULL, "DELETE": DELETE},
    "v2.upload_start": {"POST": Need("push", also=_mount_pull)},
    "v2.upload": {"GET": PUSH, "PATCH": PUSH, "PUT": PUSH, "DELETE": PUSH},
    "v2.referrers": {"GET": PULL},
    "acr.catalog": {"GET": CATALOG},
    "acr.tags": {"GET": METADATA_READ},
    "acr.tag": {"GET": METADATA_READ, "PATCH": METADATA_WRITE, "DELETE": DELETE},
    "acr.manifests": {"GET": METADATA_READ},
    "acr.manifest": {"GET": METADATA_READ, "PATCH": METADATA_WRITE},
    "acr.repository": {"GET": METADATA_READ, "PATCH": METADATA_WRITE, "DELETE": DELETE},
    "oauth.token": {"GET": PUBLIC, "POST": PUBLIC},
    "oauth.exchange": {"POST": PUBLIC},
    "health.live": {"GET": PUBLIC},
    "health.ready": {"GET": PUBLIC},
    "metrics.open": {"GET": PUBLIC},
    "metrics.admin": {"GET": METRICS},
}


def route(path: str, endpoint: Endpoint, name: str, methods: Sequence[str]) -> Route:
    """A route whose every method has an entry in :data:`ROUTE_ACCESS`, checked before ``endpoint`` runs."""
    needs = ROUTE_ACCESS.get(name, {})
    uncovered = [m for m in methods if m not in needs and not (m == "HEAD" and "GET" in needs)]
    if uncovered:
        raise LookupError(f"route {name} ({path}) has no access entry for {', '.join(uncovered)}")

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        need = needs.get(request.method, needs.get("GET")) if request.method == "HEAD" else needs[request.method]
        if need is not None and need.resource == "repository":
            check_name(repository_name(request))
            if "tag" in request.path_params:
                check_tag(str(request.path_params["tag"]))
        if need is not None:
            authorize(request, need.accesses(request))
        if need is not None and need.resource == "repository" and need.action in ("push", "delete"):
            refused = pull_cache(request).refusal(repository_name(request))
            if refused is not None:
                raise refused
        return await endpoint(request)

    return Route(path, guarded, methods=list(methods), name=name)


def repository_name(request: Request) -> str:
    """The repository name from the path (``%2F`` already decoded by the server)."""
    return str(request.path_params["name"])


def _quoted(value: str) -> str:
    """An RFC 9110 quoted-string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def challenge(request: Request, scopes: Sequence[str] = ()) -> str:
    """The ``WWW-Authenticate`` value pointing clients at this registry's token endpoint for ``scopes``."""
    realm = external_base_url(request) + "/oauth2/token"
    text = f"Bearer realm={_quoted(realm)},service={_quoted(registry_host(request))}"
    if scopes:
        text += f",scope={_quoted(' '.join(scopes))}"
    return text


def _auth(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


def record_subject(request: Request, grant: Grant | None) -> None:
    """Note who the caller is (user or token name) for the request log."""
    if grant is not None and grant.subject:
        request.scope[SUBJECT] = grant.subject


def _describe(access: Access) -> str:
    if access.resource == "repository":
        return f"{permission_of(access.action)} on repository {access.name}"
    return access.scope() or access.action


def authorize(request: Request, needed: list[Access]) -> None:
    """Raise 401 (with a challenge naming every scope needed) unless the request may do all of ``needed``."""
    auth = _auth(request)
    if not auth.enabled:
        return
    grant = auth.identify(request, registry_host(request))
    record_subject(request, grant)
    if grant is not None and grant.rights is not None and mount_source(request):
        source = mount_source(request)
        if not grant.entitled("repository", str(source), "pull"):
            request.scope[MOUNT_REFUSED] = True
            needed = [a for a in needed if not (a.name == source and a.action == "pull" and a is not needed[0])]
    missing = auth.missing(grant, needed)
    if not missing:
        request.scope[CALLER_GRANT] = grant
        return
    forbidden = [a for a in missing if grant is not None and not grant.entitled(a.resource, a.name, a.action)]
    if grant is not None and forbidden:
        details = [{"Type": a.resource, "Name": a.name, "Action": a.action, "Permission": permission_of(a.action)}
                   for a in forbidden]
        raise e.denied(f"{grant.subject} lacks " + ", ".join(_describe(a) for a in forbidden), details)
    scopes = [s for s in (a.scope() for a in needed) if s]
    if grant is None:
        message = "authentication required" if not request.headers.get("authorization") else "invalid credentials"
    else:
        message = "insufficient scope: " + " ".join(a.scope() or a.action for a in missing) + " is not granted"
    error = e.unauthorized(message, challenge(request, scopes))
    details = [{"Type": a.resource, "Name": a.name, "Action": a.action} for a in missing if a.resource == "repository"]
    if details:
        error.detail = details
    raise error
