"""``dockyard purge``: delete old tags and untagged manifests, with the flags and rules of ``acr purge``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from .connect import open_client
from .errors import UsageError
from .options import command, current
from .output import print_json, stdout_console

if TYPE_CHECKING:
    from ..workflows.purge_plan import PurgePolicy

EXAMPLE = """
dockyard purge -r 127.0.0.1:5000 --filter 'hello:.*' --ago 30d --keep 3 --untagged --dry-run
dockyard purge -r 127.0.0.1:5000 --filter 'team/.*:^dev-' --exclude '^dev-keep' --ago 1d12h -o json
dockyard purge -r 127.0.0.1:5000 --untagged-only --ago 7d
"""


def build_policy(
    filters: list[str],
    excludes: list[str],
    ago: str | None,
    keep: int,
    untagged: bool,
    untagged_only: bool,
    include_locked: bool,
) -> PurgePolicy:
    """The purge policy from command-line values (usage errors for anything malformed)."""
    from ..workflows.durations import InvalidDurationError, parse_duration
    from ..workflows.purge import now_utc
    from ..workflows.purge_plan import InvalidFilterError, PurgePolicy, compile_pattern, parse_filter

    try:
        cutoff = now_utc() - parse_duration(ago) if ago is not None else None
        return PurgePolicy(
            filters=tuple(parse_filter(f) for f in filters),
            excludes=tuple(compile_pattern(x, "--exclude") for x in excludes),
            cutoff=cutoff,
            keep=keep,
            untagged=untagged,
            untagged_only=untagged_only,
            include_locked=include_locked,
        )
    except (InvalidFilterError, InvalidDurationError) as exc:
        raise UsageError(str(exc)) from None


def _print_text(dry_run: bool, repositories: list[dict[str, Any]], skipped: list[dict[str, Any]]) -> None:
    console = stdout_console()
    verb = "Would delete" if dry_run else "Deleted"
    for repo in repositories:
        for tag in repo["tags"]:
            console.print(f"{verb} tag {repo['repository']}:{tag['tag']} ({tag['digest']})", markup=False)
        for manifest in repo["manifests"]:
            console.print(f"{verb} manifest {repo['repository']}@{manifest['digest']}", markup=False)
    for item in skipped:
        what = f"tag {item['repository']}:{item['tag']}" if "tag" in item else \
            f"manifest {item['repository']}@{item['manifest']}"
        console.print(f"Skipped {what}: {item['reason']}", markup=False)
    counts = _counts(repositories)
    for kind in ("tags", "manifests"):
        label = f"Number of {kind} to delete" if dry_run else f"Number of deleted {kind}"
        console.print(f"{label}: {counts[kind]}", markup=False)


def _counts(repositories: list[dict[str, Any]]) -> dict[str, int]:
    """How many tags and manifests the report lists."""
    return {kind: sum(len(r[kind]) for r in repositories) for kind in ("tags", "manifests")}


def register(app: typer.Typer) -> None:
    """Add ``purge`` to ``app``."""

    @command(app, "purge", example=EXAMPLE)
    def purge(
        filter_: Annotated[
            list[str] | None,
            typer.Option("--filter", "-f", metavar="REPO_REGEX:TAG_REGEX",
                         help="Repository regex (anchored) and tag regex (unanchored); repeatable."),
        ] = None,
        ago: Annotated[
            str | None,
            typer.Option("--ago", metavar="DURATION", help="Only what was last updated longer ago: 30d, 1d12h, 2h."),
        ] = None,
        keep: Annotated[
            int, typer.Option("--keep", help="Keep the N newest of the matching tags per repository.")
        ] = 0,
        untagged: Annotated[
            bool, typer.Option("--untagged", help="Also delete manifests left without tags (same --ago).")
        ] = False,
        untagged_only: Annotated[
            bool, typer.Option("--untagged-only", help="Only delete untagged manifests; --filter and --ago optional.")
        ] = False,
        include_locked: Annotated[
            bool, typer.Option("--include-locked", help="Unlock and delete locked tags and manifests too.")
        ] = False,
        exclude: Annotated[
            list[str] | None,
            typer.Option("--exclude", metavar="TAG_REGEX", help="Never delete tags matching this regex; repeatable."),
        ] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Print what would be deleted; delete nothing.")
        ] = False,
        concurrency: Annotated[
            int, typer.Option("--concurrency", help="Parallel deletes (1-32).")
        ] = 8,
    ) -> None:
        """Delete tags older than --ago matching --filter, and optionally the manifests left untagged.

        Never deleted: manifests that are still tagged, children of a kept index, and artifacts (signatures,
        SBOMs) whose subject is kept. Locked items are skipped unless --include-locked.
        """
        from ..workflows.purge import clamp_concurrency, execute_plan, plan_purge
        from ..workflows.purge_plan import plans_to_json

        options = current()
        policy = build_policy(filter_ or [], exclude or [], ago, keep, untagged, untagged_only, include_locked)
        workers = clamp_concurrency(concurrency)
        with open_client(options) as client:
            plans = plan_purge(client, policy, concurrency=workers)
            if dry_run:
                repositories, skipped = plans_to_json(plans), []
            else:
                outcomes = execute_plan(client, plans, include_locked=include_locked, concurrency=workers)
                repositories = [o.to_json() for o in outcomes if o.deleted_tags or o.deleted_manifests]
                skipped = [{"repository": o.repository, **s} for o in outcomes for s in o.skipped]
        if options.json:
            print_json(
                {
                    "dry_run": dry_run,
                    "repositories": repositories,
                    "deleted_tags": _counts(repositories)["tags"],
                    "deleted_manifests": _counts(repositories)["manifests"],
                    "skipped": skipped,
                }
            )
        else:
            _print_text(dry_run, repositories, skipped)
