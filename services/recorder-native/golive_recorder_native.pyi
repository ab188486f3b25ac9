"""golive capture's per-record work in Rust (services/recorder-native/src)."""

from collections.abc import Callable
from typing import Any

class UndecodableError(ValueError):
    """The bytes are not a value of the writer schema."""

class DesensitiseError(ValueError):
    """A personal field this build cannot tokenise safely: the record is left out, not leaked."""

# A walk program: (root ops, ops of each record type); see golive_cli.recorder.rewrite.
_Program = tuple[list[tuple[Any, ...]], list[list[tuple[Any, ...]]]]

class Rewriter:
    def __init__(self, compiled: _Program, key: bytes | None) -> None: ...
    def rewrite(self, value: bytes, start: int = 0) -> bytes | None:
        """The value desensitised from `start` on, or None if only checked (no key)."""

class Window:
    def __init__(
        self,
        key: bytes | None,
        resolve: Callable[[int], tuple[_Program, int]],
        spool_fd: int,
        batch: int,
        start_ms: int,
        end_ms: int,
    ) -> None: ...
    # spool_fd: an open file the window spools into (it keeps a duplicate of the descriptor).
    def push(self, messages: list[Any]) -> None: ...
    def last_timestamps(self) -> dict[tuple[str, int], int]: ...
    def settle(self) -> None:
        """Wait until every batch pushed is spooled (`started` and `open` may lag until then)."""
    @property
    def started(self) -> int: ...
    @property
    def open(self) -> int: ...
    def merge(self, complete_journeys: bool) -> None: ...
    def lines(self, max_bytes: int) -> bytes: ...
    def tally(self) -> tuple[dict[str, int], set[int], dict[str, int], list[str]]: ...

def json_string(text: str) -> str: ...
