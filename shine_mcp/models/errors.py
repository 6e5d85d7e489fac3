"""The one exception the analysis raises for photos it cannot use, with a reason a person can act on."""

from __future__ import annotations

from typing import Literal

RejectionCode = Literal[
    "unsupported_format",
    "too_large",
    "decompression_bomb",
    "corrupt",
    "too_small",
    "no_face",
    "multiple_faces",
    "face_cut_off",
    "drawing",
]


class ImageRejected(Exception):
    """A photo the pipeline will not analyse.

    `code` is stable (callers branch on it); `message` is for the person holding the camera and
    always says what to do next, never how the code failed inside."""

    def __init__(self, code: RejectionCode, message: str) -> None:
        super().__init__(message)
        self.code: RejectionCode = code
        self.message = message

    def __repr__(self) -> str:
        return f"ImageRejected({self.code!r}, {self.message!r})"
