"""Photos people asked Shine to keep: `SHINE_DATA_DIR/photos/<user>/<report id>.jpg`, nothing else.

Only the metadata-free re-encode (`shine_mcp.models.clean_jpeg_bytes`) is ever written here; the bytes
a person sent are not. Files are private to Shine's user (0600 in 0700 folders) and go when their report
goes. Plain blocking file I/O: async callers run these in a worker thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
from pathlib import Path

PHOTOS_DIR = "photos"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def user_folder(user_id: str) -> str:
    """The user's folder name: the id itself when it is a plain file name (`usr_…`, `gst_…`, `local`),
    else a hash of it, so an OAuth subject like `../x` can never leave the photos folder."""
    if _SAFE_NAME.fullmatch(user_id) and ".." not in user_id:
        return user_id
    return "u_" + hashlib.sha256(user_id.encode()).hexdigest()[:32]


class PhotoStore:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.root = data_dir / PHOTOS_DIR

    def save(self, user_id: str, report_id: str, jpeg: bytes) -> str:
        """Write atomically; returns the path relative to the data folder, for the report's row."""
        if not _SAFE_NAME.fullmatch(report_id):
            raise ValueError(f"not a report id: {report_id!r}")
        folder = self.root / user_folder(user_id)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = folder / f"{report_id}.jpg"
        partial = folder / f".{report_id}.{secrets.token_hex(4)}.part"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(jpeg)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return target.relative_to(self.data_dir).as_posix()

    def path(self, relative: str) -> Path:
        """The file of a stored relative path, refusing anything outside the photos folder."""
        candidate = (self.data_dir / relative).resolve()
        if not candidate.is_relative_to(self.root.resolve()):
            raise ValueError(f"not a kept photo's path: {relative!r}")
        return candidate

    def exists(self, relative: str) -> bool:
        return self.path(relative).is_file()

    def delete(self, relative: str) -> bool:
        """Remove a kept photo (and its folder once empty); False if it was already gone."""
        target = self.path(relative)
        try:
            target.unlink()
        except FileNotFoundError:
            return False
        with contextlib.suppress(OSError):  # other photos remain in it
            target.parent.rmdir()
        return True

    def move_user(self, from_id: str, to_id: str) -> dict[str, str]:
        """Move every kept photo of `from_id` into `to_id`'s folder (a guest who signs in) and remove the
        emptied folder; returns {old relative path: new relative path} for the rows that name them.
        Leftovers of an interrupted write (`.…part`) are deleted, not moved."""
        source = self.root / user_folder(from_id)
        if not source.is_dir():
            return {}
        target = self.root / user_folder(to_id)
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        moved: dict[str, str] = {}
        for file in sorted(source.iterdir()):
            if not file.is_file():
                continue
            if file.name.startswith("."):
                file.unlink(missing_ok=True)
                continue
            destination = target / file.name
            if destination.exists():  # report ids are unique: only a copy of the same report can be here
                continue
            os.replace(file, destination)
            moved[file.relative_to(self.data_dir).as_posix()] = destination.relative_to(
                self.data_dir
            ).as_posix()
        with contextlib.suppress(OSError):  # something that was not moved stays
            source.rmdir()
        return moved

    def move_back(self, moved: dict[str, str]) -> None:
        """Undo `move_user` (its database change did not commit)."""
        for old, new in moved.items():
            source = self.data_dir / old
            source.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                os.replace(self.data_dir / new, source)

    def delete_user(self, user_id: str) -> int:
        """Remove every kept photo of a person, and their folder; returns how many files went."""
        folder = self.root / user_folder(user_id)
        if not folder.is_dir():
            return 0
        files = sum(1 for f in folder.iterdir() if f.is_file())
        shutil.rmtree(folder)
        return files
