"""The app's "Colorize a video" tab: upload a short clip, watch the progress, preview
and download the colorized MP4 (core.video, with stable colours).

Work per request is bounded like the photo path: the clip's duration, frame count,
frame size and file size are limited (VIDEO_LIMITS, VIDEO_MAX_BYTES, said on the
page), and a request stops once it takes longer than the app's time limit. Uploads go
through `demo.app.accept_upload`, so the API reads only files uploaded to this server.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from core.colorizer import Colorizer, HintError
from core.video import VideoError, VideoLimits, VideoResult, colorize_video

__all__ = [
    "VIDEO_LIMITS",
    "VIDEO_MAX_BYTES",
    "ClipResult",
    "colorize_clip",
    "limits_text",
    "video_tab",
]

# a clip of this size takes about a minute on 2 CPU cores (docs/results/video.md)
VIDEO_LIMITS = VideoLimits(max_seconds=30.0, max_frames=30 * 60, max_pixels=1280 * 720)
VIDEO_MAX_BYTES = 100_000_000


class _TimeUp(Exception):
    """Raised from the progress callback when the request's time is up."""


@dataclass(frozen=True)
class ClipResult:
    """One colorized clip: the MP4 written and a one-paragraph report."""

    video: Path
    report: str
    result: VideoResult


def limits_text(limits: VideoLimits = VIDEO_LIMITS, max_bytes: int = VIDEO_MAX_BYTES):
    """The limits as the page states them."""
    return (
        f"Clips up to {limits.max_seconds:g} s, {limits.max_frames} frames, "
        f"{limits.max_pixels / 1e6:g} megapixels a frame (1280x720) and "
        f"{max_bytes / 1e6:g} MB"
    )


def colorize_clip(
    colorizer: Colorizer,
    path: Path | None,
    *,
    size: int,
    stabilize: bool = True,
    out_dir: Path,
    limits: VideoLimits = VIDEO_LIMITS,
    max_bytes: int = VIDEO_MAX_BYTES,
    time_limit_s: float | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ClipResult:
    """Colorize an uploaded clip (an accepted upload path) into `out_dir`/NAME.mp4.

    size: longer side the network sees. stabilize: carry colours between frames
    (False: every frame on its own). Raises gr.Error with one line for no file, a
    file over `max_bytes`, a clip that `core.video` refuses, or when the request
    takes longer than `time_limit_s` seconds (None: no limit).
    """
    if path is None:
        raise gr.Error("Upload a video clip first.")
    if path.stat().st_size > max_bytes:
        raise gr.Error(
            f"The file is {path.stat().st_size / 1e6:.1f} MB; the limit is "
            f"{max_bytes / 1e6:g} MB."
        )
    start = time.monotonic()

    def progress(done: int, expected: int) -> None:
        if time_limit_s is not None and time.monotonic() - start > time_limit_s:
            raise _TimeUp
        if on_progress is not None:
            on_progress(done, expected)

    out = out_dir / f"{Path(path.name).stem[:80] or 'clip'}-colorized.mp4"
    try:
        result = colorize_video(
            colorizer,
            path,
            out,
            size,
            stabilize=stabilize,
            limits=limits,
            progress=progress,
        )
    except VideoError as err:
        # the message starts with the server's path of the upload: not the user's
        message = str(err).removeprefix(f"{path}: ")
        raise gr.Error(f"This clip cannot be colorized: {message}.") from None
    except HintError as err:
        raise gr.Error(str(err)) from None
    except _TimeUp:
        raise gr.Error(
            f"This clip took longer than {time_limit_s:g} s, the limit per request on "
            "this server, and was stopped; try a shorter clip or a lower render size."
        ) from None
    seconds = time.monotonic() - start
    report = (
        f"{result.frames} frames, {result.width}x{result.height}, "
        f"{float(result.frame_rate):.3g} frames/s, {result.seconds:.1f} s; "
        f"the network ran on {result.keyframes} of them, {result.cuts} scene cuts, "
        f"{result.audio_streams} audio stream(s) copied; "
        f"{seconds:.1f} s ({result.frames / max(seconds, 1e-9):.1f} frames/s)."
    )
    return ClipResult(video=out, report=report, result=result)


def video_tab(
    colorizers: Mapping[str, Colorizer],
    *,
    upload_path: Callable[[Any], Path | None],
    result_dir: Callable[[], Path],
    time_limit_s: float | None,
    concurrency_limit: int,
) -> None:
    """Add the "Colorize a video" tab (inside the app's gr.Tabs).

    upload_path: turns an upload payload into an accepted path (`accept_upload`).
    result_dir: a new folder for one request's files. The handler is the API's
    `colorize_video` and shares the "inference" queue with the photo handlers.
    """
    names = list(colorizers)

    def on_video(
        payload,
        name,
        size,
        stabilize,
        progress=gr.Progress(),  # noqa: B008 (Gradio passes progress through this default)
    ):
        path = upload_path(payload)
        if name not in colorizers:
            raise gr.Error(f"Unknown model {name!r}; choose one of {', '.join(names)}.")
        clip = colorize_clip(
            colorizers[name],
            path,
            size=int(size),
            stabilize=bool(stabilize),
            out_dir=result_dir(),
            time_limit_s=time_limit_s,
            on_progress=lambda i, n: progress(
                (i, n) if n else i / (i + 1), desc="Colorizing", unit="frames"
            ),
        )
        return (
            str(clip.video),
            gr.update(value=str(clip.video), interactive=True),
            (clip.report),
        )

    with gr.Tab("Colorize a video", id="video"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=320):
                upload = gr.File(
                    file_types=["video"],
                    label="Your clip (MP4, MOV, MKV, AVI, WebM)",
                    height=160,
                    elem_id="video-input",
                )
                gr.Markdown(
                    limits_text()
                    + ". The colorized clip keeps the frame rate, the length, the "
                    "sound and each frame's own light and shade; colours are carried "
                    "from frame to frame so that they stay put.",
                    elem_classes="credits",
                )
                model = gr.Dropdown(names, value=names[0], label="Model")
                size = gr.Slider(
                    64, 512, value=256, step=32, label="Render size (longer side)"
                )
                stabilize = gr.Checkbox(
                    value=True,
                    label="Stable colours",
                    info="Off: every frame is colorized on its own (it flickers).",
                )
                button = gr.Button("Colorize video", variant="primary")
            with gr.Column(scale=3, min_width=400):
                preview = gr.Video(
                    label="Colorized clip", interactive=False, elem_id="video-result"
                )
                download = gr.DownloadButton(
                    "Download MP4", interactive=False, variant="primary"
                )
                report = gr.Markdown()
        button.click(
            on_video,
            inputs=[upload, model, size, stabilize],
            outputs=[preview, download, report],
            api_name="colorize_video",
            concurrency_id="inference",
            concurrency_limit=concurrency_limit,
            preprocess=False,
        )
