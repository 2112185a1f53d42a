"""A turn's text is kept whole for its record while the worker holds at most TEXT_IN_MEMORY bytes of
it; a file system that cannot take it costs the turn nothing but the text it could not keep."""

import contextlib
import io
import logging
import os
import tempfile
import tracemalloc

import pytest

from sessions_app import turn_text
from sessions_app.turn_text import TEXT_IN_MEMORY, TURN_TEXT_BYTES, TurnText

CHUNK = "Some words the agent streams, with é and 漢字 among them. "


# Open files are counted from /proc (Linux, as the servers run).
needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="no /proc/self/fd to count open files")


def turn_files_open() -> int:
    """This process's open temporary files already removed from their directory (a turn's)."""
    targets = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # the listing's own descriptor, closed since
            targets.append(os.readlink(f"/proc/self/fd/{fd}"))
    return sum(t.startswith(tempfile.gettempdir()) and t.endswith("(deleted)") for t in targets)


def test_the_text_is_kept_whole_while_the_worker_holds_at_most_a_buffer_of_it():
    said = CHUNK * 400  # 24 KB, a long answer
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        text = TurnText()
        for start in range(0, len(said), len(CHUNK)):
            text.add(said[start : start + len(CHUNK)])
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    assert held < TEXT_IN_MEMORY + 2048  # the buffer and three small objects; a bytearray holds all 24 KB
    assert text.size == len(said.encode()) and not text.truncated
    assert text.value() == said


@needs_proc
def test_the_turns_file_is_gone_once_its_text_is_read():
    open_before = turn_files_open()
    text = TurnText()
    text.add(CHUNK * 100)
    assert turn_files_open() == open_before + 1

    assert text.value() == CHUNK * 100
    assert turn_files_open() == open_before
    text.close()  # closing twice is harmless


def test_the_text_stops_at_its_limit_on_a_whole_character():
    text = TurnText()
    text.add("a" * (TURN_TEXT_BYTES - 3))
    text.add("éé")  # two bytes each: the second is cut in half
    text.add("more")
    assert text.truncated
    assert text.value() == "a" * (TURN_TEXT_BYTES - 3) + "é"


def test_a_nul_the_database_cannot_hold_is_dropped():
    text = TurnText()
    text.add("before\x00after")
    assert text.value() == "beforeafter"


def test_without_a_temporary_file_the_text_stays_in_memory(monkeypatch, caplog):
    def read_only(**kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(turn_text.tempfile, "TemporaryFile", read_only)
    text = TurnText()
    with caplog.at_level(logging.WARNING, logger="sessions_app.turn_text"):
        text.add(CHUNK * 100)
        text.add("and the end")

    assert text.value() == CHUNK * 100 + "and the end" and not text.truncated
    assert "kept in memory" in caplog.text


class _FillingDisk(io.RawIOBase):
    """A file on a disk that fills after `room` bytes."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room, self.data, self.at = room, bytearray(), 0

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data) -> int:
        if len(self.data) + len(data) > self.room:
            raise OSError(28, "No space left on device")
        self.data += data
        self.at = len(self.data)
        return len(data)

    def seek(self, at: int, whence: int = 0) -> int:
        self.at = at if whence == 0 else len(self.data)
        return self.at

    def readinto(self, into) -> int:
        piece = self.data[self.at : self.at + len(into)]
        into[: len(piece)] = piece
        self.at += len(piece)
        return len(piece)


def test_a_full_disk_ends_the_keeping_not_the_turn(monkeypatch, caplog):
    disk = _FillingDisk(room=2500)
    # The turn's file as TemporaryFile makes it: buffered, written a buffer at a time.
    monkeypatch.setattr(turn_text.tempfile, "TemporaryFile", lambda **kwargs: io.BufferedRandom(disk, TEXT_IN_MEMORY))
    text = TurnText()
    with caplog.at_level(logging.WARNING, logger="sessions_app.turn_text"):
        for _ in range(40):
            text.add("x" * 100)  # 4,000 bytes for a disk of 2,500

    assert text.truncated and "could not be kept past" in caplog.text
    # What reached the disk before it filled is stored; the buffer it could not take is lost.
    assert text.value() == "x" * len(disk.data) and len(disk.data) >= TEXT_IN_MEMORY
