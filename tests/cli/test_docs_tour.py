"""The CLI tour in docs/cli.md runs as written (its ``sh`` blocks; ``text`` blocks are illustrations)."""

from __future__ import annotations

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
