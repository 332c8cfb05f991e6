"""A TLS-terminating TCP relay on loopback, for clients that insist on ``https://``.

``with TLSRelay(upstream_port, workdir) as relay:`` listens on ``relay.url`` (``https://127.0.0.1:<port>``) with a
throw-away self-signed certificate (made by the ``openssl`` program) and pipes the decrypted bytes to the plain
HTTP server on ``upstream_port``. Clients must skip certificate verification (``connection_verify=False`` for
azure-core, ``verify=False`` for httpx).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import threading
from pathlib import Path

from tests.support.peers import require_program


def self_signed_certificate(workdir: Path) -> tuple[Path, Path]:
    """``(cert.pem, key.pem)`` for ``127.0.0.1``, valid for one day."""
    openssl = require_program("openssl", "openssl")
    workdir.mkdir(parents=True, exist_ok=True)
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()


class TLSRelay:
    """Accepts TLS connections and relays each to ``127.0.0.1:upstream_port`` in plain TCP (asyncio, own thread)."""

    def __init__(self, upstream_port: int, workdir: Path) -> None:
        cert, key = self_signed_certificate(Path(workdir))
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.upstream_port = upstream_port
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.context)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, up_writer), _pipe(up_reader, client_writer))
        for writer in (client_writer, up_writer):
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()

    def __enter__(self) -> TLSRelay:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the TLS relay did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


class CertificateAuthority:
    """A throw-away CA made by ``openssl`` in ``workdir``; :meth:`issue` signs server certificates for 127.0.0.1."""

    def __init__(self, workdir: Path) -> None:
        self.openssl = require_program("openssl", "openssl")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cert, self.key = self.workdir / "ca.pem", self.workdir / "ca.key"
        self._run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=dockyard test CA",
                  "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                  "-keyout", str(self.key), "-out", str(self.cert))
        self._issued = 0

    def _run(self, *args: str) -> None:
        subprocess.run([self.openssl, *args], check=True, capture_output=True, timeout=60)

    def issue(self, name: str = "server") -> tuple[Path, Path]:
        """``(cert.pem, key.pem)`` for ``127.0.0.1`` and ``localhost`` signed by this CA (a new serial each call)."""
        self._issued += 1
        cert, key, csr = (self.workdir / f"{name}.pem", self.workdir / f"{name}.key", self.workdir / f"{name}.csr")
        extensions = self.workdir / f"{name}.ext"
        extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
                              "basicConstraints=CA:FALSE\n")
        self._run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key),
                  "-out", str(csr))
        self._run("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
                  "-set_serial", str(1000 + self._issued), "-days", "1", "-extfile", str(extensions),
                  "-out", str(cert))
        return cert, key


def served_certificate(port: int, host: str = "127.0.0.1") -> str:
    """The PEM certificate a TLS server on ``host:port`` presents (no verification: this is what it serves)."""
    return ssl.get_server_certificate((host, port), timeout=10)
