"""Workflows built on the SDK: purge, copy, and ORAS-style artifact push/pull.

The CLI is a thin layer over these functions; they are usable from Python directly::

    from dockyard import ContainerRegistryClient
    from dockyard.workflows import copy_image, LayoutStore, RegistryStore

Progress is reported through :class:`~dockyard.workflows.progress.TransferProgress` hooks.
"""

from .artifacts import FileSpec, PullResult, PushResult, pull_artifact, push_artifact
from .copy import CopyError, CopyResult, copy_all_tags, copy_image, filter_index
from .durations import InvalidDurationError, parse_duration
from .progress import NoProgress, TransferProgress
from .purge import execute_plan, list_repository, plan_purge
from .purge_plan import PurgePolicy, RepositoryListing, RepositoryPlan, parse_filter, plan_repository
from .stores import LayoutStore, RegistryStore

__all__ = [
    "CopyError",
    "CopyResult",
    "FileSpec",
    "InvalidDurationError",
    "LayoutStore",
    "NoProgress",
    "PullResult",
    "PurgePolicy",
    "PushResult",
    "RegistryStore",
    "RepositoryListing",
    "RepositoryPlan",
    "TransferProgress",
    "copy_all_tags",
    "copy_image",
    "execute_plan",
    "filter_index",
    "list_repository",
    "parse_duration",
    "parse_filter",
    "plan_purge",
    "plan_repository",
    "pull_artifact",
    "push_artifact",
]
