"""The "Colorize a video" tab's work: a clip in, an MP4 and a report out; bad clips,
big files, limits and the time limit give one line (demo.video_tab)."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest

from benchmarks.video_clips import gray_frames, pan_zoom, sample_photos, write_clip
from core.video import VideoLimits, read_frames
from demo.video_tab import colorize_clip, limits_text

SIZE = 64


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A grey 64x48 clip of 8 frames at 8 frames/s with a cut."""
    path = tmp_path_factory.mktemp("upload") / "old film.mp4"
    write_clip(path, gray_frames(pan_zoom(sample_photos()[:2], (48, 64), 4)), 8)
    return path


@pytest.mark.slow
def test_colorizes_a_clip_into_an_mp4_with_a_report(random_colorizer, clip, tmp_path):
    seen: list[tuple[int, int]] = []
    result = colorize_clip(
        random_colorizer,
        clip,
        size=SIZE,
        out_dir=tmp_path,
        on_progress=lambda done, total: seen.append((done, total)),
    )
    assert result.video == tmp_path / "old film-colorized.mp4"
    assert len(list(read_frames(result.video))) == 8
    assert seen[-1] == (8, 8)
    assert result.report.startswith("8 frames, 64x48, 8 frames/s, 1.0 s;")
    assert "1 scene cuts" in result.report


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"max_bytes": 100}, "the limit is 0.0001 MB"),
        ({"limits": VideoLimits(max_frames=4)}, "8 frames, over the limit of 4"),
        pytest.param(
            {"time_limit_s": 0.0}, "took longer than 0 s", marks=pytest.mark.slow
        ),
    ],
)
def test_limits_are_one_line_errors(random_colorizer, clip, tmp_path, kwargs, words):
    with pytest.raises(gr.Error) as caught:
        colorize_clip(random_colorizer, clip, size=SIZE, out_dir=tmp_path, **kwargs)
    assert words in caught.value.message and "\n" not in caught.value.message
    assert str(clip.parent) not in caught.value.message  # no server paths
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_video_is_refused(random_colorizer, tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video\n")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(gr.Error, match="cannot be colorized: not a readable video"):
        colorize_clip(random_colorizer, fake, size=SIZE, out_dir=out)
    with pytest.raises(gr.Error, match="Upload a video clip first"):
        colorize_clip(random_colorizer, None, size=SIZE, out_dir=out)
    assert list(out.iterdir()) == []


def test_the_page_states_the_limits():
    assert limits_text() == (
        "Clips up to 30 s, 1800 frames, 0.9216 megapixels a frame (1280x720) and 100 MB"
    )
