"""Shine's skin analysis: photo intake, face detection, quality gates and metrics, all offline.

`analyze(data, answers)` is the entry point; `open_photo`, `locate_face` and `report_on_face` are its
three stages, for callers that report progress between them. Everything else is for tests and scripts.
"""

from .errors import ImageRejected
from .intake import IntakeResult, KeptPhoto, clean_jpeg_bytes, keepable_photo, open_photo
from .pipeline import NOTICE, LocatedFace, analyze, locate_face, report_on_face
from .report import Analysis
from .skin_type import Answers

__all__ = [
    "NOTICE",
    "Analysis",
    "Answers",
    "ImageRejected",
    "IntakeResult",
    "analyze",
    "clean_jpeg_bytes",
    "keepable_photo",
    "KeptPhoto",
    "LocatedFace",
    "locate_face",
    "open_photo",
    "report_on_face",
]
