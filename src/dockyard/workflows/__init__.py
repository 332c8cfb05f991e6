"""Workflows built on the SDK: purge, copy, ORAS-style artifact push/pull, image inspection, retagging and
index building.

The CLI is a thin layer over these functions; they are usable from Python directly::

    from dockyard import ContainerRegistryClient
    from dockyard.workflows import copy_image, LayoutStore, RegistryStore

Progress is reported through :class:`~dockyard.workflows.progress.TransferProgress` hooks.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .archives import (
        ArchiveLimits,
        DockerArchiveSource,
        DockerArchiveWriter,
        OCIArchiveSource,
        OCIArchiveWriter,
    )
    from .artifacts import FileSpec, PullResult, PushResult, pull_artifact, push_artifact
    from .copy import CopyError, CopyResult, copy_all_tags, copy_image, filter_index
    from .durations import InvalidDurationError, parse_duration
    from .images import ImageLookupError, ImageReport, image_config, inspect_image, manifest_digest
    from .indexes import IndexBuildError, IndexResult, Source, TagResult, add_tags, append_to_index, create_index
    from .progress import NoProgress, TransferProgress
    from .purge import execute_plan, list_repository, plan_purge
    from .purge_plan import PurgePolicy, RepositoryListing, RepositoryPlan, parse_filter, plan_repository
    from .stores import LayoutStore, RegistryStore

# Loaded on first use, like the package root: importing one workflow module (the CLI does, per command)
# must not import all of them.
_LAZY = {
    **dict.fromkeys(["ArchiveLimits", "DockerArchiveSource", "DockerArchiveWriter", "OCIArchiveSource",
                     "OCIArchiveWriter"], ".archives"),
    **dict.fromkeys(["FileSpec", "PullResult", "PushResult", "pull_artifact", "push_artifact"], ".artifacts"),
    **dict.fromkeys(["CopyError", "CopyResult", "copy_all_tags", "copy_image", "filter_index"], ".copy"),
    **dict.fromkeys(["InvalidDurationError", "parse_duration"], ".durations"),
    **dict.fromkeys(["ImageLookupError", "ImageReport", "image_config", "inspect_image", "manifest_digest"], ".images"),
    **dict.fromkeys(["IndexBuildError", "IndexResult", "Source", "TagResult", "add_tags", "append_to_index",
                     "create_index"], ".indexes"),
    **dict.fromkeys(["NoProgress", "TransferProgress"], ".progress"),
    **dict.fromkeys(["execute_plan", "list_repository", "plan_purge"], ".purge"),
    **dict.fromkeys(["PurgePolicy", "RepositoryListing", "RepositoryPlan", "parse_filter", "plan_repository"],
                    ".purge_plan"),
    **dict.fromkeys(["LayoutStore", "RegistryStore"], ".stores"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "ArchiveLimits",
    "CopyError",
    "DockerArchiveSource",
    "DockerArchiveWriter",
    "CopyResult",
    "FileSpec",
    "ImageLookupError",
    "ImageReport",
    "IndexBuildError",
    "IndexResult",
    "InvalidDurationError",
    "LayoutStore",
    "NoProgress",
    "OCIArchiveSource",
    "OCIArchiveWriter",
    "PullResult",
    "PurgePolicy",
    "PushResult",
    "RegistryStore",
    "RepositoryListing",
    "RepositoryPlan",
    "Source",
    "TagResult",
    "TransferProgress",
    "add_tags",
    "append_to_index",
    "copy_all_tags",
    "copy_image",
    "create_index",
    "execute_plan",
    "filter_index",
    "image_config",
    "inspect_image",
    "list_repository",
    "manifest_digest",
    "parse_duration",
    "parse_filter",
    "plan_purge",
    "plan_repository",
    "pull_artifact",
    "push_artifact",
]
