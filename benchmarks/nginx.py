"""nginx as a reverse proxy in front of a registry: the C proxy a middle hop is measured against (B13).

Everything nginx writes (pid, error log, temp files, the cache) stays in the proxy's own directory; it runs in the
foreground (``daemon off``) on a free loopback port, started and stopped like the test servers.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.support.servers import _Process

#: Where Debian's nginx package puts the program (sbin may not be on a user's PATH).
SBIN = "/usr/sbin:/sbin"
_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def nginx_program() -> str | None:
    """The nginx program, or None when it is not installed."""
    return shutil.which("nginx") or shutil.which("nginx", path=SBIN)


def nginx_config(workdir: Path, port: int, upstream: str, *, cache: bool, workers: int) -> str:
    """An nginx.conf proxying everything on ``127.0.0.1:port`` to ``upstream`` (``host:port``) over HTTP/1.1
    keep-alive connections. Without ``cache`` the responses stream through unbuffered (``proxy_buffering off``);
    with it every 200 is buffered and stored in ``workdir/cache`` (``proxy_cache``, valid 1 h)."""
    temp = "".join(f"    {name}_temp_path {workdir / 'tmp' / name};\n" for name in _TEMP_PATHS)
    store = f"    proxy_cache_path {workdir / 'cache'} levels=1:2 keys_zone=registry:8m max_size=8g inactive=1h " \
            "use_temp_path=off;\n" if cache else ""
    passing = "proxy_cache registry;\n            proxy_cache_valid 200 1h;\n            proxy_buffering on;" \
        if cache else "proxy_buffering off;"
    return f"""{"user root;" if os.geteuid() == 0 else ""}
worker_processes {workers};
daemon off;
pid {workdir / "nginx.pid"};
error_log {workdir / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
{temp}{store}    upstream registry {{
        server {upstream};
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        location / {{
            proxy_pass http://registry;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            {passing}
        }}
    }}
}}
"""


class Nginx(_Process):
    """nginx in front of ``upstream`` (``host:port``) with the configuration of :func:`nginx_config`."""

    name = "nginx"

    def __init__(self, workdir: Path, upstream: str, *, cache: bool, workers: int = 2) -> None:
        super().__init__(workdir)
        self.cache = cache
        program = nginx_program()
        if program is None:
            raise RuntimeError("nginx is not installed (apt-get install nginx)")
        self.program = program
        for name in _TEMP_PATHS:
            (self.workdir / "tmp" / name).mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / "nginx.conf"
        self.config_path.write_text(nginx_config(self.workdir, self.port, upstream, cache=cache, workers=workers))

    def command(self) -> list[str]:
        return [self.program, "-p", str(self.workdir), "-e", str(self.workdir / "error.log"),
                "-c", str(self.config_path)]

    def stored_bytes(self) -> int:
        """Bytes in the cache directory (responses with their headers), 0 without a cache."""
        return sum(path.stat().st_size for path in (self.workdir / "cache").rglob("*") if path.is_file())
