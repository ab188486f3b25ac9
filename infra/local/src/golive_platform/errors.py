"""The one error type the platform raises: its message is the one line a user reads."""


class PlatformError(Exception):
    """A cause the user can act on; the CLI prints it and exits non-zero."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail
