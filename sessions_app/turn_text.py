"""The agent's text of a chat turn, kept while the turn is relayed so that the turn is stored with
it when it ends (GET .../turns).

An open turn holds at most TEXT_IN_MEMORY bytes of its text in the web worker's memory: the rest
goes to a temporary file of the turn's own, unlinked from the start so that the kernel removes it
with the worker, as Django keeps a large upload and nginx a large response. What a turn costs the
worker then does not grow with what the agent says (docs/PERFORMANCE.md, "The turn's text in a
file of its own"). Where no temporary file can be made (a read-only file system), the text stays in memory.
"""

import contextlib
import io
import logging
import tempfile

logger = logging.getLogger(__name__)

# The agent's text kept of a turn, in UTF-8: far more than a reply's prose (the code an agent
# writes goes to files through its tools).
TURN_TEXT_BYTES = 64 * 1024
# The turn file's write buffer, so the most of its text a turn holds in memory; the file is
# written once per that much text, on the event loop: a write into the kernel's page cache, which
# does not wait for the disk (bench/relay.py's CPU per relayed event did not move).
TEXT_IN_MEMORY = 1024


class TurnText:
    """A turn's text as the relay keeps it: added as it streams, read once as the turn is stored."""

    __slots__ = ("_file", "size", "truncated")

    def __init__(self) -> None:
        self._file: io.BufferedIOBase | None = None
        self.size = 0  # bytes taken (up to TURN_TEXT_BYTES)
        self.truncated = False

    def add(self, text: str) -> None:
        """Keeps the text, up to TURN_TEXT_BYTES in all. A file that can no longer be written (the
        disk is full) ends the keeping, not the turn: what was kept before is stored, cut."""
        if self.truncated:
            return
        chunk = text.encode("utf-8", "replace")
        room = TURN_TEXT_BYTES - self.size
        if len(chunk) > room:
            self.truncated, chunk = True, chunk[:room]
        if not chunk:
            return
        try:
            self._open().write(chunk)
        except OSError:
            logger.warning("the text of a chat turn could not be kept past %d bytes", self.size, exc_info=True)
            self.truncated = True
            return
        self.size += len(chunk)

    def _open(self) -> io.BufferedIOBase:
        if self._file is None:
            try:
                self._file = tempfile.TemporaryFile(buffering=TEXT_IN_MEMORY)  # noqa: SIM115 (open while the turn is)
            except OSError:
                logger.warning("no temporary file for the text of a chat turn: it is kept in memory", exc_info=True)
                self._file = io.BytesIO()
        return self._file

    def value(self) -> str:
        """The text kept (a character cut at the limit is dropped, and NUL, which a database's text
        cannot hold). Its file is closed: this is read once, when the turn ends."""
        if self._file is None:
            return ""
        try:
            kept = self._read_back()
        except OSError:
            logger.warning("the text of a chat turn could not be read back", exc_info=True)
            kept, self.truncated = b"", True
        finally:
            self.close()
        return kept.decode("utf-8", "ignore").replace("\x00", "")

    def _read_back(self) -> bytes:
        try:
            self._file.seek(0)  # which writes out the buffer first
        except OSError:
            if not self.truncated:
                raise
            # The disk filled: the buffer's last piece cannot be written, and the file itself
            # holds the text as far as it got.
            raw = self._file.raw
            raw.seek(0)
            return raw.readall()
        return self._file.read()

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):  # what is left unwritten is lost, the file closed
                self._file.close()
            self._file = None
