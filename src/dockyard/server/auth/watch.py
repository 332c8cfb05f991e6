"""Learning that a file changed without a ``stat`` per request: an inotify watch on the event loop.

:class:`DirectoryWatch` watches the directory of a file (and of the file a symlink points to) and raises
:attr:`DirectoryWatch.dirty` on any event there. The kernel queues the event during the write or rename itself, and
the event loop handles it in the same poll that reports a request sent afterwards, before that request's task
runs: a change made before a request was sent is seen by that request. Events of other files in the directory
only cost one ``stat`` more. Where inotify is missing (not Linux) or gives up (a watched directory was removed or
moved, the event queue overflowed) the watch says so (:attr:`DirectoryWatch.active` is False): the owner looks at
the file, and starts a new watch of the directories the path names now.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

log = logging.getLogger("dockyard.server.auth")

try:
    from inotify_simple import INotify
    from inotify_simple import flags as in_flags
except ImportError:  # not Linux, or the library is not installed: callers fall back to checking every time
    INotify = None

#: Any change of an entry in the directory (written, replaced, renamed, removed, re-permissioned) or of the
#: directory itself.
_MASK = 0
_GIVE_UP = 0
if INotify is not None:
    _MASK = (in_flags.MODIFY | in_flags.ATTRIB | in_flags.CLOSE_WRITE | in_flags.MOVED_FROM | in_flags.MOVED_TO
             | in_flags.CREATE | in_flags.DELETE | in_flags.DELETE_SELF | in_flags.MOVE_SELF)
    #: Events after which the watch no longer sees everything (a watched directory was removed or moved away:
    #: the path now names another one, or none).
    _GIVE_UP = (in_flags.IGNORED | in_flags.Q_OVERFLOW | in_flags.UNMOUNT | in_flags.DELETE_SELF
                | in_flags.MOVE_SELF)


class DirectoryWatch:
    """An inotify watch on the directories of ``path``, read by the running event loop (see the module)."""

    def __init__(self, path: Path) -> None:
        if INotify is None:
            raise OSError("inotify is not available")
        self.path = path
        #: Set by every event; the owner clears it before it looks at the file.
        self.dirty = False
        #: False once the watch may have missed an event (then the owner must check every time).
        self.active = True
        self._inotify = INotify(nonblocking=True)
        try:
            absolute = Path(os.path.abspath(path))
            for directory in dict.fromkeys((absolute.parent, Path(os.path.realpath(absolute)).parent)):
                self._inotify.add_watch(directory, _MASK)
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(self._inotify.fileno(), self._on_events)
        except BaseException:
            self._inotify.close()
            raise

    @classmethod
    def start(cls, path: Path, *, again: bool = False) -> DirectoryWatch | None:
        """A watch on ``path`` for the running loop, ``None`` (logged, unless ``again``) when inotify cannot
        watch it."""
        try:
            return cls(path)
        except (OSError, RuntimeError, NotImplementedError) as exc:
            (log.debug if again else log.warning)("cannot watch %s for changes (%s): it is looked at every time",
                                                  path, exc)
            return None

    def quiet(self) -> bool:
        """True while nothing happened since :meth:`clear` and the watch sees everything."""
        return self.active and not self.dirty

    def clear(self) -> None:
        """Forget the events so far (call it before looking at the file: a change during the look marks again)."""
        self.dirty = False

    def _on_events(self) -> None:
        try:
            events = self._inotify.read(timeout=0)
        except BlockingIOError:
            return
        except OSError as exc:
            log.warning("watching %s failed (%s): it is checked on every request instead", self.path, exc)
            events = []
            self.active = False
        self.dirty = True
        if any(event.mask & _GIVE_UP for event in events) or not self.active:
            self.close()

    def close(self) -> None:
        """Stop watching (the owner then checks every time)."""
        self.active = False
        if not self._inotify.closed:
            self._loop.remove_reader(self._inotify.fileno())
            self._inotify.close()
