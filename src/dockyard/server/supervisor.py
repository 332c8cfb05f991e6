"""The ``--workers`` supervisor: uvicorn's, except that each worker serves on a listening socket of its own.

With one listening socket shared by every worker, the first worker to wake accepts every connection waiting
(asyncio and uvloop accept up to the backlog per wake-up), so a client opening several connections at once lands
on one worker. :func:`.run.bind_listeners` binds one socket per worker instead (an ``SO_REUSEPORT`` group the
kernel spreads new connections over); :class:`SocketPerWorker` hands worker *i* socket *i* — also to the worker
started in place of a dead one, so no socket of the group is ever left without a worker accepting on it. Given a
single socket, every worker shares it, as uvicorn does.
"""

from __future__ import annotations

import logging
from socket import socket

from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

logger = logging.getLogger("uvicorn.error")


class SocketPerWorker(Multiprocess):
    """uvicorn's worker supervisor that starts worker *i* on socket *i* when there is one socket per worker.

    The worker count is then fixed (SIGTTIN/SIGTTOU are refused): a worker taken away would strand the
    connections the kernel still queues on its socket, and one added would have no socket of its own.
    """

    def _sockets_of(self, slot: int) -> list[socket]:
        """The sockets the worker in ``slot`` serves on."""
        return self.sockets if len(self.sockets) == 1 else [self.sockets[slot]]

    def _spawn(self, slot: int) -> Process:
        process = Process(self.config, self._sockets_of(slot))
        process.start()
        return process

    def init_processes(self) -> None:
        for slot in range(self.processes_num):
            self.processes.append(self._spawn(slot))

    def keep_subprocess_alive(self) -> None:
        """As uvicorn's, with the replacement of a dead worker started on that worker's socket."""
        if self.should_exit.is_set():
            return
        for idx, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung: kill it
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                # It failed before serving (app, TLS or socket broken): every restart would fail the same way.
                logger.error(f"Child process [{process.pid}] failed to start, stopping the parent process.")
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            logger.info(f"Child process [{process.pid}] died")
            self.processes[idx] = self._spawn(idx)

    def restart_all(self) -> None:
        """As uvicorn's (each replacement serving before its predecessor is retired), socket by socket."""
        for idx, old_process in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new_process = self._spawn(idx)
            if not new_process.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new_process.kill()
                new_process.join()
                if not self.should_exit.is_set():
                    logger.error(
                        f"New child process [{new_process.pid}] was not ready in time; "
                        f"keeping worker [{old_process.pid}] and aborting the restart."
                    )
                return
            old_process.terminate()
            old_process.join()
            self.processes[idx] = new_process

    def handle_ttin(self) -> None:
        if len(self.sockets) > 1:
            logger.warning("Received SIGTTIN: the number of workers is fixed (one listening socket each).")
            return
        super().handle_ttin()

    def handle_ttou(self) -> None:
        if len(self.sockets) > 1:
            logger.warning("Received SIGTTOU: the number of workers is fixed (one listening socket each).")
            return
        super().handle_ttou()
