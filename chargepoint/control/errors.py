"""A request a local surface cannot carry out: a code for scripts, a message for people."""

from __future__ import annotations


class ControlError(Exception):
    """A request that cannot be done; ``code`` for scripts, the message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
