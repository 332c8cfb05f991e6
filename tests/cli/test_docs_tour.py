"""The CLI tour in docs/cli.md runs as written (its ``sh`` blocks; ``text`` blocks are illustrations)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.cli.conftest import run_script
from tests.support.servers import DockyardServer

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_tour_runs(fresh_dockyard: DockyardServer, cli_env: dict[str, str], tmp_path: Path) -> None:
    fresh_dockyard.start()
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks, "docs/cli.md has no sh blocks"
    script = "\n".join(blocks).replace("127.0.0.1:5000", fresh_dockyard.host)
    work = tmp_path / "tour"
    work.mkdir()
    proc = run_script(script, work, cli_env)
    assert (work / "pulled" / "site" / "index.html").read_text() == "<h1>hi</h1>\n"
    assert "refused: the tag is locked" in proc.stdout
    # The everyday verbs: an index built from two hand-made images, then a third platform appended.
    inspected = json.loads((work / "inspect.json").read_text())
    assert [i["platform"] for i in inspected["images"]] == ["linux/amd64", "linux/arm64"]
    assert inspected["images"][1]["config"]["cmd"] == ["cat", "/greeting.txt"]
    assert json.loads((work / "arm64-config.json").read_text())["architecture"] == "arm64"
    appended = json.loads((work / "appended.json").read_text())
    assert [m["platform"] for m in appended["manifests"]] == ["linux/amd64", "linux/arm64", "linux/riscv64"]
    assert appended["previous_digest"] == inspected["digest"]
    assert (work / "greeting-copy.txt").read_text() == "hello from riscv64\n"
