"""Synthetic test clips: a pan and zoom over colour photos, with cuts, and their grey
versions, written with PyAV (the tests and `benchmarks.video` use them).

    frames = pan_zoom(photos, (48, 64), frames_per_shot=6)
    write_clip(path, frames, fps=12, audio_hz=440.0)
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from core.colorspace import gray_level, rgb_to_lab
from core.types import UInt8Array

__all__ = ["gray_frames", "pan_zoom", "sample_photos", "shard_photos", "write_clip"]


def sample_photos() -> list[UInt8Array]:
    """scikit-image's bundled colour photos (astronaut, coffee, chelsea, rocket):
    uint8 (H, W, 3)."""
    from skimage import data

    return [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]


def shard_photos(
    folder: str | Path, count: int, seed: int, min_hw: tuple[int, int]
) -> list[UInt8Array] | None:
    """Up to `count` colour photos, uint8 (H, W, 3), from the first .tar shard of
    `folder`, taken in an order shuffled with `seed` among those at least `min_hw`
    (height, width) in size; None when `folder` has no shard."""
    shards = sorted(Path(folder).glob("*.tar"))
    if not shards:
        return None
    photos: list[UInt8Array] = []
    with tarfile.open(shards[0]) as tar:
        names = sorted(m.name for m in tar.getmembers() if m.name.endswith(".jpg"))
        for i in np.random.default_rng(seed).permutation(len(names)):
            member = tar.extractfile(names[i])
            if member is None:
                continue
            with Image.open(member) as image:
                rgb = np.asarray(image.convert("RGB"))
            if rgb.shape[0] >= min_hw[0] and rgb.shape[1] >= min_hw[1]:
                photos.append(rgb)
            if len(photos) == count:
                break
    return photos


def pan_zoom(
    photos: Sequence[UInt8Array],
    frame_hw: tuple[int, int],
    frames_per_shot: int,
    *,
    zoom: float = 1.25,
    pan: float = 0.2,
) -> Iterator[UInt8Array]:
    """One shot per photo (a cut between shots): a window that zooms in by `zoom`
    and pans by `pan` of the photo's width over the shot, resized to frame_hw.

    photos: uint8 (H, W, 3). Yields uint8 (h, w, 3) frames, frames_per_shot each.
    """
    fh, fw = frame_hw
    for photo in photos:
        ph, pw = photo.shape[:2]
        image = Image.fromarray(photo)
        # the largest window of the frame's aspect ratio that fits, shrunk by zoom
        base_w = min(pw / (1 + pan), ph * fw / fh)
        for i in range(frames_per_shot):
            t = i / max(frames_per_shot - 1, 1)
            win_w = base_w / (1 + (zoom - 1) * t)
            win_h = win_w * fh / fw
            cx = base_w / 2 + t * pan * pw
            cy = ph / 2
            box = (cx - win_w / 2, cy - win_h / 2, cx + win_w / 2, cy + win_h / 2)
            frame = image.resize((fw, fh), Image.Resampling.BICUBIC, box=box)
            yield np.asarray(frame.convert("RGB"))


def gray_frames(frames: Iterable[UInt8Array]) -> Iterator[UInt8Array]:
    """Each frame made grey: uint8 (H, W, 3) with R = G = B = g(L), the grey
    rendering of its CIE lightness (`core.colorspace.gray_level`)."""
    for rgb in frames:
        gray = gray_level(rgb_to_lab(rgb)[..., 0])
        level = np.clip(np.rint(gray * 255.0), 0, 255).astype(np.uint8)
        yield np.repeat(level[..., None], 3, axis=-1)


def write_clip(
    path: Path,
    frames: Iterable[UInt8Array],
    fps: int = 12,
    *,
    audio_hz: float | None = None,
    crf: int = 10,
) -> int:
    """Encode uint8 (H, W, 3) frames as H.264 yuv420p at `fps` into `path` (the
    container from its suffix), with a mono AAC sine tone of `audio_hz` as long as the
    video when given. Returns the number of frames written."""
    import av

    count = 0
    with av.open(str(path), mode="w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.pix_fmt = "yuv420p"
        video.options = {"crf": str(crf), "preset": "veryfast"}
        pending = []
        for rgb in frames:
            if count == 0:
                video.width, video.height = rgb.shape[1], rgb.shape[0]
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), "rgb24")
            frame.pts = count
            frame.time_base = Fraction(1, fps)
            pending.extend(video.encode(frame))
            count += 1
        pending.extend(video.encode(None))
        if audio_hz is not None:
            rate = 16000
            audio = out.add_stream("aac", rate=rate)
            audio.layout = "mono"
            seconds = count / fps
            t = np.arange(int(seconds * rate)) / rate
            tone = (0.3 * np.sin(2 * np.pi * audio_hz * t)).astype(np.float32)
            chunk = 1024
            for start in range(0, len(tone), chunk):
                samples = tone[None, start : start + chunk]
                frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
                frame.sample_rate = rate
                frame.pts = start
                frame.time_base = Fraction(1, rate)
                pending.extend(audio.encode(frame))
            pending.extend(audio.encode(None))
        for packet in pending:
            out.mux(packet)
    return count
