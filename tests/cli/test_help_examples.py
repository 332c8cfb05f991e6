"""Every example in a command's ``--help`` runs as written against ``dockyard serve``, and with ``-o json``
prints valid JSON with the documented keys.

The examples are read from the commands themselves, so a new command without a runnable example fails here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer

from dockyard.cli.main import app
from dockyard.layout import OCILayout
from tests.cli.conftest import run_script
from tests.conftest import TEST_USER
from tests.support.images import make_multiarch_index, write_to_layout
from tests.support.servers import DockyardServer

#: Commands whose examples belong to the server's own tests, or need no registry (the completion script is
#: checked in test_user_steps.py).
SERVER_COMMANDS = {"serve", "gc", "completion", "migrate"}
EXAMPLE_HOST = "127.0.0.1:5000"
#: Command groups that work on an htpasswd file, a data directory or a metadata database, not a registry: their
#: examples run in test_token_cmd.py.
DATA_DIR_GROUPS = {"user", "token", "scope-map", "db"}

#: The order the examples run in, with the shell lines run before one (to undo an earlier example's lock or
#: deletion); the examples themselves stay as a user would copy them.
ORDER: list[tuple[str, list[str]]] = [
    ("login", []),
    ("logout", []),
    ("push", []),
    ("pull", []),
    ("copy", []),
    ("sync", []),
    ("repo list", []),
    ("repo show", []),
    ("tag list", []),
    ("tag show", []),
    ("manifest list", []),
    ("manifest show", []),
    ("manifest get", []),
    ("manifest put", ["dockyard manifest get library/hello:v1 > manifest.json"]),
    ("image inspect", []),
    ("digest", []),
    ("config", []),
    ("tag add", []),
    ("index create", ["dockyard tag add library/hello@$(dockyard digest library/hello:v1 --platform linux/amd64) "
                      "demo/app:amd64",
                      "dockyard tag add library/hello@$(dockyard digest library/hello:v1 --platform linux/arm64) "
                      "demo/app:arm64"]),
    ("index append", []),
    ("blob put", []),
    ("blob get", []),
    ("blob delete", []),
    ("manifest referrers",
     ["dockyard push library/hello:v1-sig signature.json --subject v1 --artifact-type application/example"]),
    ("repo update", []),
    ("tag update", ["dockyard repo update library/hello --delete-enabled true"]),
    ("manifest update", ["dockyard tag update library/hello:v1 --write-enabled true"]),
    ("purge", ["dockyard manifest update library/hello:v1 --delete-enabled true"]),
    ("tag delete", []),
    ("manifest delete", ["dockyard copy oci:./image-layout:v1 library/hello:v1"]),
    ("repo delete", ["dockyard copy oci:./image-layout:v1 library/hello:v1"]),
]

#: The top-level keys of each command's JSON (every object of a list, for the listing commands).
JSON_KEYS: dict[str, set[str]] = {
    "login": {"registry", "username", "config"},
    "logout": {"registry", "removed"},
    "push": {"repository", "tag", "digest", "media_type", "manifest_size", "layers"},
    "pull": {"digest", "files", "skipped"},
    "copy": {"images", "blobs_copied", "blobs_skipped", "blobs_mounted", "bytes_copied", "manifests"},
    "sync": {"dry_run", "repositories", "tags_copied", "tags_skipped", "blobs_copied", "blobs_mounted",
             "blobs_skipped", "bytes_copied", "manifests", "failed"},
    "repo list": {"name"},
    "repo show": {"name", "manifest_count", "tag_count", "created_on", "last_updated_on", "can_delete", "can_write",
                  "can_read", "can_list"},
    "tag list": {"repository", "name", "digest", "created_on", "last_updated_on", "can_delete", "can_write",
                 "can_read", "can_list"},
    "manifest list": {"repository", "digest", "media_type", "total_size", "architecture", "os", "tags", "created_on",
                      "last_updated_on", "references", "can_delete", "can_write", "can_read", "can_list"},
    "manifest get": {"schemaVersion", "mediaType", "manifests"},
    "manifest referrers": {"mediaType", "digest", "size", "artifactType", "annotations"},
    "purge": {"dry_run", "repositories", "deleted_tags", "deleted_manifests", "skipped"},
    "tag delete": {"untagged", "digest"},
    "manifest delete": {"deleted"},
    "repo delete": {"deleted"},
    "manifest put": {"reference", "digest", "media_type", "manifest_size"},
    "image inspect": {"reference", "digest", "media_type", "artifact_type", "is_index", "manifest_size",
                      "total_size", "referrers", "subject", "annotations", "images"},
    "digest": {"reference", "digest"},
    "config": {"architecture", "os", "created", "config", "rootfs", "history"},  # the image config itself
    "tag add": {"source", "digest", "media_type", "tags", "blobs_mounted", "blobs_copied"},
    "index create": {"reference", "digest", "media_type", "manifests", "added", "replaced", "previous_digest",
                     "blobs_mounted", "blobs_copied"},
    "blob put": {"repository", "digest", "size"},
    "blob get": {"digest", "size", "path"},
    "blob delete": {"deleted"},
}
JSON_KEYS["index append"] = JSON_KEYS["index create"]
for _name in ("repo update",):
    JSON_KEYS[_name] = JSON_KEYS["repo show"]
for _name in ("tag show", "tag update"):
    JSON_KEYS[_name] = JSON_KEYS["tag list"]
for _name in ("manifest show", "manifest update"):
    JSON_KEYS[_name] = JSON_KEYS["manifest list"]


def help_examples() -> dict[str, list[str]]:
    """``command path -> example lines`` for every command of the app."""
    found: dict[str, list[str]] = {}

    def walk(command: Any, path: list[str]) -> None:
        children = getattr(command, "commands", None)
        if children:
            for name, child in children.items():
                walk(child, [*path, name])
            return
        epilog = command.epilog or ""
        found[" ".join(path)] = [line.strip() for line in epilog.splitlines() if "dockyard " in line]

    walk(typer.main.get_command(app), [])
    return found


def test_every_command_has_an_example_and_runs_in_order() -> None:
    examples = help_examples()
    missing = sorted(name for name, lines in examples.items() if not lines and name not in SERVER_COMMANDS)
    assert not missing, f"commands without an example in --help: {missing}"
    data_dir_commands = {name for name in examples if name.split()[0] in DATA_DIR_GROUPS}
    assert {name for name, _ in ORDER} == set(examples) - SERVER_COMMANDS - data_dir_commands


def _as_json(line: str, command: str) -> str:
    if command == "manifest get":
        return line.split(" > ", 1)[0]  # the JSON goes to stdout, not to the file
    return f"{line} -o json"


def _check_json(command: str, line: str, stdout: str) -> None:
    documents = []
    decoder = json.JSONDecoder()
    text = stdout.strip()
    while text:  # commands with several examples print one document each
        document, end = decoder.raw_decode(text)
        documents.append(document)
        text = text[end:].strip()
    assert documents, f"{line}: no JSON on stdout"
    for document in documents:
        objects = document if isinstance(document, list) else [document]
        if command in {"repo list", "tag list", "manifest list", "manifest referrers"}:
            assert isinstance(document, list) and document, (line, document)
        for item in objects:
            assert isinstance(item, dict), (line, item)
            assert set(item) == JSON_KEYS[command], (line, sorted(set(item)), sorted(JSON_KEYS[command]))


@pytest.mark.parametrize("output", ["table", "json"])
def test_help_examples_run(
    output: str,
    fresh_dockyard: DockyardServer,
    dockyard_auth_server: DockyardServer,
    cli_env: dict[str, str],
    tmp_path: Path,
) -> None:
    fresh_dockyard.start()
    work = tmp_path / "work"
    (work / "docs").mkdir(parents=True)
    (work / "README.md").write_text("# notes\n")
    (work / "docs" / "index.md").write_text("hello\n")
    (work / "signature.json").write_text('{"signed": true}\n')
    write_to_layout(make_multiarch_index(seed="examples", layer_size=64), OCILayout(work / "image-layout").create(),
                    tag="v1")
    env = {**cli_env, "DOCKYARD_REGISTRY": fresh_dockyard.host, "PASSWORD": TEST_USER[1]}

    def sh(line: str) -> str:
        return run_script(line, work, env, timeout=120).stdout

    sh("dockyard copy oci:./image-layout:v1 library/hello:v1")
    examples = help_examples()
    for command, before in ORDER:
        for line in before:
            sh(line)
        for example in examples[command]:
            host = dockyard_auth_server.host if command in {"login", "logout"} else fresh_dockyard.host
            line = example.replace(EXAMPLE_HOST, host)
            if output == "json":
                _check_json(command, line, sh(_as_json(line, command)))
            else:
                sh(line)
    assert (work / "notes" / "README.md").read_text() == "# notes\n"
    assert (work / "backup" / "index.json").is_file()
    config = Path(cli_env["DOCKER_CONFIG"]) / "config.json"
    assert dockyard_auth_server.host not in (config.read_text() if config.exists() else "")  # logged out again
