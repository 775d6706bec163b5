"""Spool change notification: inotify on the spool's directory wakes the reader at once.

The change source polls the spool with a short adaptive interval; with a watcher it is also woken
the moment RedDB appends to the file, creates it or renames a pruned copy over it, so a new record
is read within one event-loop turn instead of at the next poll. Polling stays: it is what notices
changes inotify cannot see (a spool on a network file system), and it is all there is where
inotify is not (not Linux, no ``inotify_simple``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class SpoolWatcher:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._inotify: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, callback: Callable[[], None]) -> bool:
        """Call ``callback`` on the running loop whenever the spool changes; False when change
        notification is not available here (the caller keeps polling alone)."""
        try:
            from inotify_simple import INotify, flags
        except ImportError:
            return False
        try:
            inotify = INotify(nonblocking=True)
            # the directory for the spool appearing or being replaced, the file for its writes:
            # other files written in the same directory wake nobody
            directory = inotify.add_watch(str(self.path.parent), flags.CREATE | flags.MOVED_TO)
        except OSError as exc:  # no inotify, no watches left, no directory yet
            log.info("no change notification for %s (%s); polling it", self.path, exc)
            return False
        name = self.path.name

        def watch_file() -> None:
            # not there (yet): its creation is seen on the directory
            with contextlib.suppress(OSError):
                inotify.add_watch(str(self.path), flags.MODIFY | flags.CLOSE_WRITE)

        def on_readable() -> None:
            try:
                events = inotify.read(timeout=0)
            except (BlockingIOError, InterruptedError):
                return
            changed = False
            for event in events:
                if event.wd != directory:
                    changed = True  # a write to the spool (or to the copy it replaced)
                elif event.name == name:
                    watch_file()  # a new file under the spool's name: watch its writes
                    changed = True
            if changed:
                callback()

        watch_file()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(inotify.fileno(), on_readable)
        self._inotify = inotify
        return True

    def stop(self) -> None:
        if self._inotify is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._inotify.fileno())
        self._inotify.close()
        self._inotify = None
