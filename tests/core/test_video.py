"""Video clips: frame count, rate, duration and audio kept, lightness kept, stable
colours, hints carried along the motion, limits and bad files (core.video)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from benchmarks.video_clips import gray_frames, pan_zoom, sample_photos, write_clip
from core.colorize import main
from core.colorizer import Colorizer, HintError
from core.colorspace import rgb_to_lab
from core.types import FloatArray
from core.video import (
    ChromaStabilizer,
    VideoError,
    VideoLimits,
    clip_psnr,
    colorize_video,
    flicker,
    output_name,
    read_frames,
)

FPS = 12
SHOT = 6  # frames per shot; the clip cuts from the astronaut to the coffee at 6
SIZE = 64  # render size: a tiny network input keeps these tests fast


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 64x48 colour clip of 12 frames at 12 frames/s (two shots, a cut at frame 6),
    its grey version with a 440 Hz AAC tone, and bad files."""
    folder = tmp_path_factory.mktemp("clips")
    color = list(pan_zoom(sample_photos()[:2], (48, 64), SHOT))
    write_clip(folder / "color.mp4", color, FPS)
    write_clip(folder / "grey.mp4", gray_frames(color), FPS, audio_hz=440.0)
    data = (folder / "grey.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (folder / "text.mp4").write_text("this is not a video\n")
    with av.open(str(folder / "empty.mkv"), mode="w") as out:
        # a video stream without frames beside a short silent audio stream
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("aac", rate=16000)
        audio.layout = "mono"
        silence = np.zeros((1, 1024), np.float32)
        frame = av.AudioFrame.from_ndarray(silence, format="flt", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        for packet in [*audio.encode(frame), *audio.encode(None)]:
            out.mux(packet)
    return {p.stem: p for p in folder.iterdir()}


@pytest.fixture(scope="module")
def trained() -> Colorizer:
    return Colorizer.load("default-v1")


def _streams(path: Path) -> dict[str, object]:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio
        packets = [
            bytes(p) for p in container.demux(*audio) if p.size and p.dts is not None
        ]
        return {
            "rate": video.average_rate,
            "size": (video.codec_context.width, video.codec_context.height),
            "duration": container.duration,
            "audio": [(a.codec_context.name, a.sample_rate) for a in audio],
            "audio_packets": packets,
        }


def test_output_keeps_frames_rate_duration_and_audio(random_colorizer, clips, tmp_path):
    out = tmp_path / "out" / "grey.mp4"
    result = colorize_video(random_colorizer, clips["grey"], out, SIZE)
    assert out.is_file() and result.path == out
    assert result.frames == 2 * SHOT == len(list(read_frames(out)))
    assert result.frame_rate == FPS and result.audio_streams == 1
    assert result.seconds == pytest.approx(2 * SHOT / FPS)
    before, after = _streams(clips["grey"]), _streams(out)
    assert after["rate"] == before["rate"] == Fraction(FPS)
    assert after["size"] == before["size"] == (64, 48)
    assert after["duration"] == pytest.approx(before["duration"], abs=0.05e6)
    assert after["audio"] == before["audio"] == [("aac", 16000)]
    assert after["audio_packets"] == before["audio_packets"]  # copied, not re-encoded
    assert [p.name for p in out.parent.iterdir()] == ["grey.mp4"]  # no temporaries


@pytest.mark.slow
def test_output_keeps_each_frames_lightness(random_colorizer, clips, tmp_path):
    out = tmp_path / "grey.mp4"
    colorize_video(random_colorizer, clips["grey"], out, SIZE)
    for original, colored in zip(
        read_frames(clips["grey"]), read_frames(out), strict=True
    ):
        lightness = rgb_to_lab(original)[..., 0]
        kept = rgb_to_lab(colored)[..., 0]
        # yuv420p and 8-bit rounding move L a little, never the structure
        assert np.abs(kept - lightness).mean() < 2.5
        assert np.corrcoef(kept.ravel(), lightness.ravel())[0, 1] > 0.99


@pytest.mark.slow
def test_stable_colours_flicker_less_than_per_frame(trained, clips, tmp_path):
    stable = colorize_video(trained, clips["grey"], tmp_path / "s.mp4", SIZE)
    colorize_video(trained, clips["grey"], tmp_path / "p.mp4", SIZE, stabilize=False)
    assert stable.keyframes < stable.frames and stable.cuts == 1
    originals = list(read_frames(clips["color"]))
    measured = {
        name: flicker(read_frames(tmp_path / f"{name}.mp4"), originals, cuts=[SHOT])
        for name in ("s", "p")
    }
    assert measured["s"] < measured["p"]
    psnr = {
        name: clip_psnr(read_frames(tmp_path / f"{name}.mp4"), originals)
        for name in ("s", "p")
    }
    # the tiny clip moves several pixels a frame and is seen at render size 64; the
    # goal (within 0.2 dB) is measured on 640x480 clips by benchmarks.video: here,
    # only that carrying colours along the motion costs no more than about 1 dB
    assert psnr["s"] > psnr["p"] - 1.0


def test_flicker_measures_colour_changes_along_the_motion(clips, rng):
    originals = list(read_frames(clips["color"]))
    steady = flicker(originals, originals, cuts=[SHOT])
    noisy = []
    for frame in originals:
        shift = rng.integers(-25, 26, size=3)
        noisy.append(np.clip(frame.astype(int) + shift, 0, 255).astype(np.uint8))
    assert steady < flicker(noisy, originals, cuts=[SHOT]) - 2.0
    assert flicker(originals[:1], originals[:1]) == 0.0


def test_stabilizer_resets_at_a_cut_and_carries_colour_between():
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (48, 80), dtype=np.uint8)
    texture = cv2.GaussianBlur(texture, (0, 0), 2.0)
    texture = ((texture - texture.min()) * (255.0 / np.ptp(texture))).astype(np.uint8)
    stabilizer = ChromaStabilizer()
    chroma = np.zeros((48, 64, 2), np.float32)
    chroma[..., 0] = np.linspace(-40, 40, 64)[None, :]
    assert stabilizer.start(texture[:, :64])  # the first frame needs the network
    stabilizer.finish(chroma)
    assert not stabilizer.start(texture[:, 2:66])  # shifted by 2 px: carried
    carried = stabilizer.finish(None)
    # the pattern moved left by 2 px, and its colour with it
    assert np.abs(carried[10:-10, 10:-10] - chroma[10:-10, 12:-8]).mean() < 2.0
    assert stabilizer.start(255 - texture[:, :64])  # a different picture: a cut
    assert stabilizer.cut and stabilizer.cuts == 1


@pytest.mark.slow
def test_hints_apply_to_the_later_frames_of_their_scene(
    hint_colorizer, clips, tmp_path
):
    hints = [(32, 20, (30, 60, 230)), (10, 40, (30, 60, 230))]
    plain = tmp_path / "plain.mp4"
    hinted = tmp_path / "hinted.mp4"
    colorize_video(hint_colorizer, clips["grey"], plain, SIZE)
    result = colorize_video(hint_colorizer, clips["grey"], hinted, SIZE, hints=hints)
    a = [rgb_to_lab(f)[..., 1:] for f in read_frames(plain)]
    b = [rgb_to_lab(f)[..., 1:] for f in read_frames(hinted)]
    change = [float(np.abs(x - y).mean()) for x, y in zip(a, b, strict=True)]
    assert all(c > 1.0 for c in change[:SHOT]), change  # every frame of the scene
    assert all(c < 1.0 for c in change[SHOT:]), change  # dropped at the cut
    assert result.hints_kept == 0


PAN = 8  # frames of the one-shot pan clip


@pytest.fixture(scope="module")
def pan_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A grey 64x48 clip of 8 frames panning and zooming over one photo (no cut)."""
    path = tmp_path_factory.mktemp("pan") / "pan.mp4"
    write_clip(path, gray_frames(pan_zoom(sample_photos()[:1], (48, 64), PAN)), FPS)
    return path


def _pan_point(x: float, y: float, frame: int, to: int) -> tuple[float, float]:
    """Where pixel (x, y) of `frame` of the pan clip is on frame `to`, from the
    window that `pan_zoom` cuts out of the photo on each frame."""
    photo = sample_photos()[0]
    ph, pw = photo.shape[:2]
    base_w = min(pw / 1.2, ph * 64 / 48)

    def window(i: int) -> tuple[float, float, float]:
        t = i / (PAN - 1)
        win_w = base_w / (1 + 0.25 * t)
        cx = base_w / 2 + t * 0.2 * pw
        return cx - win_w / 2, ph / 2 - win_w * 48 / 64 / 2, win_w / 64

    left, top, scale = window(frame)
    px, py = left + (x + 0.5) * scale, top + (y + 0.5) * scale
    left, top, scale = window(to)
    return (px - left) / scale - 0.5, (py - top) / scale - 0.5


def _ab_changes(plain: Path, hinted: Path) -> list[FloatArray]:
    a = [rgb_to_lab(f)[..., 1:] for f in read_frames(plain)]
    b = [rgb_to_lab(f)[..., 1:] for f in read_frames(hinted)]
    return [y - x for x, y in zip(a, b, strict=True)]


@pytest.mark.slow
def test_hints_apply_to_the_earlier_frames_of_their_scene(
    trained_hint_colorizer, pan_clip, tmp_path
):
    color = (30, 60, 230)
    target = rgb_to_lab(np.array([[color]], np.uint8))[0, 0, 1:]
    hint_frame, x, y = 4, 30, 30
    hints = [(x + dx, y + dy, color) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
    plain, hinted = tmp_path / "plain.mp4", tmp_path / "hinted.mp4"
    colorize_video(trained_hint_colorizer, pan_clip, plain, SIZE)
    colorize_video(
        trained_hint_colorizer,
        pan_clip,
        hinted,
        SIZE,
        hints=hints,
        hint_frame=hint_frame,
    )
    a = [rgb_to_lab(f)[..., 1:] for f in read_frames(plain)]
    b = [rgb_to_lab(f)[..., 1:] for f in read_frames(hinted)]
    for frame in (0, 2, hint_frame, PAN - 1):
        px, py = _pan_point(x, y, hint_frame, frame)
        ix, iy = int(round(px)), int(round(py))
        there = (slice(iy - 1, iy + 2), slice(ix - 1, ix + 2))
        before = np.linalg.norm(a[frame][there].mean((0, 1)) - target)
        after = np.linalg.norm(b[frame][there].mean((0, 1)) - target)
        # the hinted colour, at the point the motion took the hint to
        assert after < 0.5 * before, (frame, before, after)


@pytest.mark.slow
def test_hints_skip_the_scenes_before_their_frame(hint_colorizer, clips, tmp_path):
    hints = [(32, 20, (30, 60, 230)), (10, 40, (30, 60, 230))]
    plain = tmp_path / "plain.mp4"
    hinted = tmp_path / "hinted.mp4"
    colorize_video(hint_colorizer, clips["grey"], plain, SIZE)
    colorize_video(
        hint_colorizer, clips["grey"], hinted, SIZE, hints=hints, hint_frame=SHOT + 2
    )
    change = [float(np.abs(d).mean()) for d in _ab_changes(plain, hinted)]
    assert all(c < 1.0 for c in change[:SHOT]), change  # before the cut: none
    assert all(c > 1.0 for c in change[SHOT:]), change  # its scene, from the cut


def test_hints_need_a_hint_model(random_colorizer, clips, tmp_path):
    hints = [(5, 5, (200, 30, 30))]
    with pytest.raises(HintError, match="no hint inputs"):
        colorize_video(random_colorizer, clips["grey"], tmp_path / "a.mp4", hints=hints)
    assert list(tmp_path.iterdir()) == []  # nothing left behind


@pytest.mark.slow
def test_hints_must_name_a_frame_and_a_pixel_of_the_clip(
    hint_colorizer, clips, tmp_path
):
    hints = [(5, 5, (200, 30, 30))]
    with pytest.raises(HintError, match="beyond the clip's 12 frames"):
        colorize_video(
            hint_colorizer,
            clips["grey"],
            tmp_path / "b.mp4",
            SIZE,
            hints=hints,
            hint_frame=40,
        )
    with pytest.raises(HintError, match="outside the 64x48"):
        colorize_video(
            hint_colorizer,
            clips["grey"],
            tmp_path / "c.mp4",
            SIZE,
            hints=[(70, 5, (0, 0, 0))],
        )
    assert list(tmp_path.iterdir()) == []  # nothing left behind


@pytest.mark.parametrize(
    ("name", "limits", "words"),
    [
        ("truncated", VideoLimits(), "not a readable video"),
        ("text", VideoLimits(), "not a readable video"),
        ("empty", VideoLimits(), "the video stream has no frames"),
        ("grey", VideoLimits(max_frames=5), "12 frames, over the limit of 5"),
        ("grey", VideoLimits(max_seconds=0.5), "over the limit of 0.5 s"),
        ("grey", VideoLimits(max_pixels=1000), "64x48"),
    ],
)
def test_bad_clips_get_one_line_errors(
    random_colorizer, clips, tmp_path, name, limits, words
):
    with pytest.raises(VideoError) as caught:
        colorize_video(
            random_colorizer, clips[name], tmp_path / "out.mp4", SIZE, limits=limits
        )
    message = str(caught.value)
    assert words in message and "\n" not in message
    assert message.startswith(str(clips[name]))
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone


def test_never_overwrites_the_input(random_colorizer, clips, tmp_path):
    src = tmp_path / "clip.mp4"
    src.write_bytes(clips["grey"].read_bytes())
    with pytest.raises(VideoError, match="refusing to overwrite the input"):
        colorize_video(random_colorizer, src, src, SIZE, overwrite=True)
    assert src.read_bytes() == clips["grey"].read_bytes()


def test_output_names():
    assert output_name("a/clip.MP4") == "clip.mp4"
    assert output_name("clip.mov") == "clip.mov"
    assert output_name("clip.webm") == "clip.mkv"
    assert output_name("clip.avi") == "clip.mkv"


@pytest.mark.slow
def test_cli_colorizes_videos_and_photos_and_reports_bad_files(
    clips, tmp_path, capsys, random_v2_weights
):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("grey", "text", "truncated"):
        (inputs / f"{name}.mp4").write_bytes(clips[name].read_bytes())
    Image.fromarray(sample_photos()[1][::8, ::8]).save(inputs / "photo.png")
    out = tmp_path / "out"
    argv = [str(inputs), "--out", str(out), "--size", str(SIZE)]
    argv += ["--model", "default", "--weights", str(random_v2_weights)]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.strip().splitlines()[-1] == "2 colorized, 2 failed"
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and all("not a readable video" in e for e in errors)
    assert sorted(p.name for p in out.iterdir()) == ["grey.mp4", "photo.png"]
    assert len(list(read_frames(out / "grey.mp4"))) == 2 * SHOT
    # an existing output is left alone, the input never replaced
    assert main([str(inputs / "grey.mp4"), "--out", str(out), "--size", "64"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main([str(inputs / "grey.mp4"), "--out", str(inputs), "--size", "64"]) == 1
    assert "refusing to overwrite the input" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_limits_are_one_line_errors(clips, tmp_path, capsys):
    argv = [str(clips["grey"]), "--out", str(tmp_path), "--max-frames", "3"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out.strip() == "0 colorized, 1 failed"
    [line] = captured.err.strip().splitlines()
    assert line.startswith("error: ") and "over the limit of 3 frames" in line
    assert main([str(clips["grey"]), "--out", str(tmp_path), "--max-seconds", "0"]) == 2


@pytest.mark.slow
def test_cli_takes_hints_for_a_clip_from_its_sidecar(
    clips, tmp_path, capsys, random_v2_weights
):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("good", "bad"):
        (inputs / f"{name}.mp4").write_bytes(clips["grey"].read_bytes())
    (inputs / "good.hints.json").write_text('[{"x": 30, "y": 20, "color": "#2050e0"}]')
    (inputs / "bad.hints.json").write_text('[{"x": 99, "y": 20, "color": "#2050e0"}]')
    argv = [str(inputs), "--out", str(tmp_path / "out"), "--size", str(SIZE)]
    argv += ["--model", "default", "--weights", str(random_v2_weights)]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out.strip().splitlines()[-1] == "1 colorized, 1 failed"
    [error] = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert "bad.hints.json" in error and "outside the 64x48" in error
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good.mp4"]
