"""What every tab's handlers share: the models, the limits and the result folders."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.colorizer import Colorizer
from demo import app as photo_app


@dataclass(frozen=True)
class PageContext:
    """The page's shared state, made once by `build_demo`.

    colorizers: name -> Colorizer, the first shown first. workdir: the page's private
    folder (examples, results). roots: Gradio's upload folders, asked per request
    (the page's cache is known once the Blocks exist). time_limit_s: seconds per
    request, None for no limit.
    """

    colorizers: Mapping[str, Colorizer]
    workdir: Path
    roots: Callable[[], list[Path]]
    max_pixels: int
    max_bytes: int
    concurrency_limit: int
    time_limit_s: float | None

    @property
    def limits(self) -> dict[str, int]:
        """The keyword arguments `max_pixels` and `max_bytes` of the handlers."""
        return {"max_pixels": self.max_pixels, "max_bytes": self.max_bytes}

    @property
    def inference(self) -> dict[str, Any]:
        """Event options of every request that runs a model: one shared queue."""
        return {
            "concurrency_id": "inference",
            "concurrency_limit": self.concurrency_limit,
            # Gradio's own preprocessing opens uploads with Pillow and fails with a
            # bare "Error" on a file that is not an image; the handlers check files
            # themselves: accept_upload (only files Gradio stored for an upload: a
            # raw API call may name any path) and read_photo (says what is wrong)
            "preprocess": False,
        }

    def deadline(self) -> photo_app.Deadline:
        """The time limit of a request starting now."""
        return photo_app.Deadline(self.time_limit_s)

    def upload(self, payload: Any) -> Path | None:
        """The real path of an upload of this page (`accept_upload`), or gr.Error."""
        return photo_app.accept_upload(payload, self.roots())

    def result_dir(self) -> Path:
        """A new folder for one request's files (old ones removed)."""
        return photo_app.result_dir(self.workdir, time.time())

    def pick(self, name: str | None) -> Colorizer:
        """The model called `name`, or gr.Error naming the choices."""
        return photo_app.pick_colorizer(self.colorizers, name)
