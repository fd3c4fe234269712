"""Colorize video clips with stable colours, streaming frame by frame on a CPU.

    from core import Colorizer
    colorizer = Colorizer.load("default")
    colorizer.colorize_video("clip.mp4", "colorized/clip.mp4", size=256)

Each frame is decoded, colorized and encoded in turn (memory does not grow with the
clip's length). As for photos, the network sees the frame's lightness at `size` and
only the predicted chroma is upsampled and joined with the frame's own full-resolution
lightness. The output has the input's frame count, frame rate, time stamps and
duration; its audio streams are copied packet by packet (no re-encoding). Video is
encoded as H.264 (libx264, else OpenH264, else MPEG-4 part 2), yuv420p.

Stable colours (`ChromaStabilizer`): per-frame colorization flickers, since each frame
guesses its colours anew. Here the chroma is carried from frame to frame along the
optical flow (OpenCV's DIS flow on the grey frames at the network's output
resolution). The network runs only on keyframes: every `keyframe_interval` frames,
at a scene cut, and when less than `min_reliable` of the frame is reliably tracked.
On a keyframe the new prediction is blended into the carried chroma where the flow is
reliable (a running mean along the motion, the new prediction weighing at least
`blend`), and replaces it elsewhere; between keyframes the carried chroma is used.
The flow is reliable at a pixel where the forward and backward flows agree and the
warped previous grey frame matches the current one. A scene cut (a large change of
the grey histogram, or almost nothing reliably tracked) starts afresh.

Measures (`flicker`, `clip_psnr`): flicker is the mean ab difference (CIE Lab)
between consecutive frames after motion compensation, with the flow taken from the
original grey frames, so that any colorization of a clip and its original colours are
compared on the same motion.

av (PyAV, which ships FFmpeg) and cv2 (opencv-python-headless) are imported on first
use, so importing this module stays light.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.colorspace import rgb_to_lab
from core.types import FloatArray, UInt8Array

if TYPE_CHECKING:
    from core.colorizer import Colorizer, Hint

__all__ = [
    "ENCODERS",
    "VIDEO_SUFFIXES",
    "ChromaStabilizer",
    "StabilizeOptions",
    "VideoError",
    "VideoLimits",
    "VideoResult",
    "clip_psnr",
    "colorize_video",
    "colorize_video_file",
    "flicker",
    "is_video",
    "output_name",
    "read_frames",
]

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
# output container per input suffix: (FFmpeg muxer, output suffix); H.264 and any
# audio codec fit Matroska, so AVI and WebM inputs become .mkv
_CONTAINERS = {
    ".mp4": ("mp4", ".mp4"),
    ".m4v": ("mp4", ".m4v"),
    ".mov": ("mov", ".mov"),
    ".mkv": ("matroska", ".mkv"),
    ".avi": ("matroska", ".mkv"),
    ".webm": ("matroska", ".mkv"),
}
# audio codecs FFmpeg's MP4 and MOV muxers take as they are (MOV also takes PCM)
_MP4_AUDIO = frozenset({"aac", "mp3", "mp2", "ac3", "eac3", "alac", "opus", "flac"})
ENCODERS = ("libx264", "libopenh264", "mpeg4")  # first one this FFmpeg has is used
CRF = 18  # libx264 quality: visually lossless for most clips
PRESET = "veryfast"  # libx264 speed preset
_HIST_BINS = 32  # grey histogram bins of the scene-cut test


class VideoError(ValueError):
    """A clip that cannot be colorized: not a video, corrupt, no frames, or over the
    limits. The message is one line and says what came and what was expected."""


@dataclass(frozen=True)
class VideoLimits:
    """The largest clip accepted; checked before decoding and again while decoding."""

    max_seconds: float = 600.0  # duration
    max_frames: int = 36_000  # 10 minutes at 60 frames/s
    max_pixels: int = 3840 * 2160  # width x height of one frame (4K UHD)


@dataclass(frozen=True)
class StabilizeOptions:
    """How colours are carried between frames (see the module docstring).

    keyframe_interval: the network runs at least every this many frames (1: on every
        frame). blend: the least weight in (0, 1] of a keyframe's new prediction where
        the flow is reliable (1: no temporal averaging). min_reliable: share of
        reliably tracked pixels under which the network runs on the frame.
    cut_histogram: grey-histogram distance (half the L1 distance of 32-bin
        histograms, in [0, 1]) above which a frame starts a new scene. cut_reliable:
        share of reliable pixels under which it does too.
    """

    keyframe_interval: int = 8
    blend: float = 0.2
    min_reliable: float = 0.85
    cut_histogram: float = 0.3
    cut_reliable: float = 0.35
    brightness_tolerance: float = 20.0  # grey levels (0..255) of the warped frame

    def __post_init__(self) -> None:
        if self.keyframe_interval < 1:
            raise ValueError(
                f"keyframe_interval must be >= 1, got {self.keyframe_interval}"
            )
        if not 0.0 < self.blend <= 1.0:
            raise ValueError(f"blend must be in (0, 1], got {self.blend}")


PER_FRAME = StabilizeOptions(keyframe_interval=1, blend=1.0)  # no stabilisation


@dataclass(frozen=True)
class VideoResult:
    """What `colorize_video` wrote."""

    path: Path  # the output file
    frames: int  # frames written (the input's)
    keyframes: int  # frames the network ran on
    cuts: int  # scene cuts found (the first frame not counted)
    seconds: float  # duration, from the last frame's time stamp and the frame rate
    frame_rate: Fraction
    audio_streams: int  # audio streams copied
    encoder: str
    hints_kept: int = 0  # hint points still tracked on the last frame
    width: int = 0
    height: int = 0


def is_video(path: str | Path) -> bool:
    """True when the file name has a video suffix (VIDEO_SUFFIXES, any case)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def output_name(source: str | Path) -> str:
    """The output file name of a clip: the same stem; .mp4, .m4v, .mov and .mkv keep
    their suffix, .avi and .webm become .mkv."""
    source = Path(source)
    return source.stem + _CONTAINERS.get(source.suffix.lower(), ("", ".mp4"))[1]


# ------------------------------------------------------------------ stabilisation


def _dis() -> Any:
    import cv2

    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)


def _histogram(gray: UInt8Array) -> FloatArray:
    counts = np.bincount((gray >> 3).ravel(), minlength=_HIST_BINS)
    return (counts / max(gray.size, 1)).astype(np.float32)


def _tracked(
    dis: Any,
    gray: UInt8Array,
    prev_gray: UInt8Array,
    grid: tuple[FloatArray, FloatArray],
    tolerance: float,
) -> tuple[FloatArray, FloatArray, FloatArray, np.ndarray]:
    """Flow between two grey frames and where it is reliable.

    gray, prev_gray: uint8 (h, w). grid: pixel x and y coordinates, float32 (h, w).
    Returns (map_x, map_y): float32 (h, w), where each pixel of `gray` was in
    `prev_gray`; forward: float32 (h, w, 2), the flow from `prev_gray` to `gray`;
    reliable: bool (h, w), forward-backward consistent, inside the previous frame and
    matching its brightness within `tolerance` grey levels.
    """
    import cv2

    gray, prev_gray = np.ascontiguousarray(gray), np.ascontiguousarray(prev_gray)
    back = dis.calc(gray, prev_gray, None)
    forward = dis.calc(prev_gray, gray, None)
    map_x = grid[0] + back[..., 0]
    map_y = grid[1] + back[..., 1]
    forward_there = cv2.remap(
        forward, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    mismatch = np.sum(np.square(back + forward_there), axis=-1)
    scale = np.sum(np.square(back), -1) + np.sum(np.square(forward_there), -1)
    h, w = gray.shape
    inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    warped_gray = cv2.remap(
        prev_gray.astype(np.float32),
        map_x,
        map_y,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    bright = np.abs(warped_gray - gray.astype(np.float32)) <= tolerance
    reliable = (mismatch <= 0.01 * scale + 0.5) & inside & bright
    return map_x, map_y, forward, reliable


class ChromaStabilizer:
    """Carries chroma along the optical flow between frames of one clip.

    Call `start(gray)` for each frame in order (uint8 (h, w) grey frame at the
    chroma's resolution); it says whether the network must run on that frame. Then
    `finish(chroma)` with the network's chroma (float32 (h, w, 2)) when it did, or
    `finish(None)`; it returns the frame's stable chroma, float32 (h, w, 2).
    """

    def __init__(self, options: StabilizeOptions = StabilizeOptions()) -> None:
        self.options = options
        self.keyframes = 0
        self.cuts = -1  # the first frame is not a cut
        self._dis = _dis()
        self._gray: UInt8Array | None = None
        self._hist: FloatArray | None = None
        self._chroma: FloatArray | None = None
        self._age: FloatArray | None = None  # predictions averaged along the motion
        self._since_key = 0
        self._grid: tuple[FloatArray, FloatArray] | None = None
        # per frame, set by start()
        self.cut = True
        self.forward: FloatArray | None = None  # flow previous -> this frame
        self.reliable: np.ndarray | None = None
        self._maps: tuple[FloatArray, FloatArray] | None = None
        self._force = False

    def force_keyframe(self) -> None:
        """Make the next `start` ask for the network and its prediction replace the
        carried chroma (used on the frame that gets new hints)."""
        self._force = True

    def start(self, gray: UInt8Array) -> bool:
        """Track the new frame; True when the network must run on it."""
        opts = self.options
        hist = _histogram(gray)
        self.cut = self._gray is None or self._gray.shape != gray.shape
        share = 0.0
        if not self.cut:
            assert self._hist is not None and self._gray is not None
            distance = 0.5 * float(np.abs(hist - self._hist).sum())
            self.cut = distance > opts.cut_histogram
        if not self.cut:
            if self._grid is None or self._grid[0].shape != gray.shape:
                ys, xs = np.mgrid[0 : gray.shape[0], 0 : gray.shape[1]]
                self._grid = (xs.astype(np.float32), ys.astype(np.float32))
            map_x, map_y, self.forward, self.reliable = _tracked(
                self._dis, gray, self._gray, self._grid, opts.brightness_tolerance
            )
            self._maps = (map_x, map_y)
            share = float(self.reliable.mean())
            self.cut = share < opts.cut_reliable
        if self.cut:
            self.cuts += 1
            self.forward = self.reliable = self._maps = None
        self._gray, self._hist = gray, hist
        self._since_key += 1
        return (
            self.cut
            or self._force
            or self._since_key >= opts.keyframe_interval
            or share < opts.min_reliable
        )

    def finish(self, predicted: FloatArray | None) -> FloatArray:
        """The frame's chroma, float32 (h, w, 2): `predicted` (the network's chroma
        for this frame, or None when it did not run) merged with the carried one."""
        import cv2

        force, self._force = self._force, False
        if predicted is not None:
            self.keyframes += 1
            self._since_key = 0
        if (
            self.cut
            or self._chroma is None
            or self._chroma.shape[:2]
            != (self._gray.shape if self._gray is not None else ())
        ):
            if predicted is None:
                raise ValueError("a scene's first frame needs the network's chroma")
            self._chroma = np.asarray(predicted, np.float32)
            self._age = np.ones(self._chroma.shape[:2], np.float32)
            return self._chroma
        assert self._maps is not None and self.reliable is not None
        map_x, map_y = self._maps
        warped = cv2.remap(
            self._chroma,
            map_x,
            map_y,
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        age = cv2.remap(
            self._age, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE
        )
        age = np.where(self.reliable, age, 0.0).astype(np.float32)
        if predicted is None:
            self._chroma, self._age = warped, age
            return warped
        predicted = np.asarray(predicted, np.float32)
        weight = np.maximum(1.0 / (age + 1.0), self.options.blend)
        if force:
            weight[:] = 1.0
        chroma = warped + weight[..., None] * (predicted - warped)
        self._chroma, self._age = chroma.astype(np.float32), age + 1.0
        return self._chroma


def _track_hints(
    points: list[tuple[float, float, tuple[int, int, int]]],
    stabilizer: ChromaStabilizer,
    frame_hw: tuple[int, int],
) -> list[tuple[float, float, tuple[int, int, int]]]:
    """Move hint points (x, y in frame pixels) along the flow to the current frame;
    points where the flow is unreliable, outside the frame, or after a cut are
    dropped."""
    if stabilizer.cut or stabilizer.forward is None or stabilizer.reliable is None:
        return []
    return _move_points(points, stabilizer.forward, stabilizer.reliable, frame_hw)


def _move_points(
    points: list[tuple[float, float, tuple[int, int, int]]],
    forward: FloatArray,
    reliable: np.ndarray,
    frame_hw: tuple[int, int],
) -> list[tuple[float, float, tuple[int, int, int]]]:
    """Move points (x, y in frame pixels) of one frame along `forward`, the flow
    (h, w, 2) from that frame to the next at the flow's resolution; points that
    leave the frame or land where `reliable` (bool (h, w), the next frame's) is
    False are dropped."""
    h, w = reliable.shape
    fh, fw = frame_hw
    sx, sy = w / fw, h / fh
    kept = []
    for x, y, color in points:
        cx = min(max(int((x + 0.5) * sx), 0), w - 1)
        cy = min(max(int((y + 0.5) * sy), 0), h - 1)
        dx, dy = forward[cy, cx]
        nx, ny = x + float(dx) / sx, y + float(dy) / sy
        if not (0 <= nx < fw and 0 <= ny < fh):
            continue
        if not reliable[
            min(int((ny + 0.5) * sy), h - 1), min(int((nx + 0.5) * sx), w - 1)
        ]:
            continue
        kept.append((nx, ny, color))
    return kept


# ------------------------------------------------------------------ reading


def _av_message(err: BaseException) -> str:
    """One line for a PyAV/FFmpeg error (without the file name it repeats)."""
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return " ".join(str(text).split())


def _open(src: str | Path) -> Any:
    import av

    try:
        return av.open(str(src), mode="r", metadata_errors="ignore")
    except av.FFmpegError as err:
        raise VideoError(
            f"{src}: not a readable video ({_av_message(err)}): corrupt, truncated "
            "or not a video file"
        ) from None
    except OSError as err:
        raise VideoError(f"{src}: cannot read ({err.strerror or err})") from None


def _video_stream(container: Any, src: str | Path) -> Any:
    if not container.streams.video:
        raise VideoError(
            f"{src}: no video stream, so no frames to colorize (an empty clip, or "
            "an audio or data file?)"
        )
    stream = container.streams.video[0]
    if not stream.codec_context.width or not stream.codec_context.height:
        raise VideoError(f"{src}: the video stream has no frame size: empty or corrupt")
    return stream


def _audio_fits(stream: Any, fmt: str) -> bool:
    """Whether an audio stream can be copied into the muxer `fmt` as it is."""
    name = stream.codec_context.name
    if fmt == "matroska":
        return True
    if fmt == "mov" and name.startswith("pcm_"):
        return True
    return name in _MP4_AUDIO


def _frame_rate(stream: Any) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return Fraction(rate) if rate else Fraction(25)


def _check_limits(container: Any, stream: Any, src: str | Path, limits: VideoLimits):
    """Refuse a clip over the limits from its header (before any decoding)."""
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > limits.max_pixels:
        raise VideoError(
            f"{src}: frames of {width}x{height} ({width * height / 1e6:.1f} MP) are "
            f"over the limit of {limits.max_pixels / 1e6:.1f} MP per frame"
        )
    seconds = None
    if stream.duration is not None and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        seconds = container.duration / 1e6
    if seconds is not None and seconds > limits.max_seconds:
        raise VideoError(
            f"{src}: {seconds:.1f} s long, over the limit of {limits.max_seconds:g} s"
        )
    frames = stream.frames or (
        int(round(seconds * float(_frame_rate(stream)))) if seconds else 0
    )
    if frames > limits.max_frames:
        raise VideoError(
            f"{src}: {frames} frames, over the limit of {limits.max_frames} frames"
        )
    return frames


def read_frames(
    src: str | Path, limits: VideoLimits = VideoLimits()
) -> Iterator[UInt8Array]:
    """Decode a clip's frames one by one: uint8 (H, W, 3) sRGB, in display order.

    Raises VideoError for a file that is not a readable video or is over `limits`.
    """
    import av

    with _open(src) as container:
        stream = _video_stream(container, src)
        stream.thread_type = "AUTO"
        _check_limits(container, stream, src, limits)
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as err:
            raise VideoError(f"{src}: corrupt video ({_av_message(err)})") from None


# ------------------------------------------------------------------ colorizing


def _encoder() -> str:
    import av

    for name in ENCODERS:
        try:
            av.codec.Codec(name, "w")
        except (av.FFmpegError, ValueError):
            continue
        return name
    raise VideoError("this FFmpeg has no H.264 or MPEG-4 encoder")


def _small_gray(lightness: FloatArray, shape: tuple[int, int]) -> UInt8Array:
    """Lightness (H, W) in [0, 100] as uint8 (h, w) grey levels at `shape`."""
    import cv2

    small = cv2.resize(lightness, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    return np.clip(small * 2.55 + 0.5, 0, 255).astype(np.uint8)


def _temp_path(dst: Path) -> Path:
    """A temporary file beside `dst`, named as `core.atomic` names its temporaries."""
    fd, tmp = tempfile.mkstemp(
        prefix=f".{dst.name}.{os.getpid()}.", suffix=".tmp", dir=dst.parent
    )
    try:
        # mkstemp creates 0600 files; give the result a normal file's permissions
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
    finally:
        os.close(fd)
    return Path(tmp)


def colorize_video(
    colorizer: Colorizer,
    src: str | Path,
    dst: str | Path,
    size: int | None = 256,
    *,
    stabilize: bool | StabilizeOptions = True,
    hints: Sequence[Hint] | None = None,
    hint_frame: int = 0,
    temperature: float | None = None,
    saturation: float = 1.0,
    limits: VideoLimits = VideoLimits(),
    progress: Callable[[int, int], None] | None = None,
    overwrite: bool = False,
) -> VideoResult:
    """Colorize the clip `src` into `dst`, frame by frame (see the module docstring).

    size: longer side the network sees (None: the model's input size).
    stabilize: True (default options), False (every frame colorized on its own: it
        flickers) or StabilizeOptions.
    hints: for a model with hint inputs, [(x, y, (r, g, b)), ...] in pixels of frame
        `hint_frame` (0-based), as `Colorizer.colorize` takes them. Each point is
        carried along the optical flow to the following frames, and back to the
        earlier frames of its scene, and given to the network on each keyframe,
        until the flow there is unreliable, it leaves the frame, or the scene cuts;
        the colours it set are carried further with the rest of the chroma. Other
        scenes (before or after a cut) get no hints. For the earlier frames, a first
        pass decodes frames 0..hint_frame and keeps the grey frames of the hint
        frame's scene at the flow's resolution (not the full frames) to track the
        points backward; only the points of each frame are kept.
    progress: called as progress(frames done, frames expected or 0 if unknown).
    overwrite: replace an existing `dst`; `dst` is never the input.
    Writes `dst` atomically (a temporary file beside it, then a rename; removed on
    any failure). Frames of odd width or height lose their last column or row
    (yuv420p needs even sides). Raises VideoError (one-line message) for a clip that
    is not a readable video, is corrupt, has no frames or is over `limits`; HintError
    for hints outside the frame or given to a model without hint inputs.
    """
    import av

    from core.colorizer import HintError
    from core.quantize import ANNEALED_T

    src, dst = Path(src), Path(dst)
    temperature = ANNEALED_T if temperature is None else float(temperature)
    size = colorizer._check_options(size, temperature, saturation, 0)
    if hints:
        colorizer._check_takes_hints()
    if hint_frame < 0:
        raise ValueError(f"hint_frame must be >= 0, got {hint_frame}")
    options = (
        stabilize
        if isinstance(stabilize, StabilizeOptions)
        else StabilizeOptions()
        if stabilize
        else PER_FRAME
    )
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise VideoError(f"{src}: refusing to overwrite the input with its own output")
    if dst.exists() and not overwrite:
        raise VideoError(f"{src}: output {dst} already exists")
    fmt = _CONTAINERS.get(dst.suffix.lower(), ("mp4", ""))[0]
    space = colorizer.spec.color_space
    encoder = _encoder()
    dst.parent.mkdir(parents=True, exist_ok=True)

    with _open(src) as container:
        stream = _video_stream(container, src)
        stream.thread_type = "AUTO"
        expected = _check_limits(container, stream, src, limits)
        audio = list(container.streams.audio)
        rate = _frame_rate(stream)
        width = stream.codec_context.width // 2 * 2
        height = stream.codec_context.height // 2 * 2
        tmp = _temp_path(dst)
        try:
            with av.open(str(tmp), mode="w", format=fmt) as out:
                video_out = out.add_stream(encoder, rate=rate)
                video_out.width, video_out.height = width, height
                video_out.pix_fmt = "yuv420p"
                video_out.time_base = stream.time_base
                video_out.codec_context.time_base = stream.time_base
                if encoder == "libx264":
                    video_out.options = {"crf": str(CRF), "preset": PRESET}
                left_out = [a for a in audio if not _audio_fits(a, fmt)]
                for a in left_out:
                    log.warning(
                        "warning: %s: audio stream %d (%s) cannot be copied into %s; "
                        "left out (an .mkv output takes any audio)",
                        src,
                        a.index,
                        a.codec_context.name,
                        dst.suffix,
                    )
                audio = [a for a in audio if a not in left_out]
                audio_out = {a.index: out.add_stream_from_template(a) for a in audio}
                state = _Run(
                    colorizer,
                    ChromaStabilizer(options),
                    size,
                    temperature,
                    saturation,
                    space,
                    (height, width),
                )
                if hints:
                    state.pending_hints = list(hints)
                state.hint_frame = hint_frame
                if hints and hint_frame > 0:
                    state.before = _hints_before(
                        state, src, limits, (height, width), options
                    )
                count, first_pts, last_pts = 0, None, None
                packets = container.demux(stream, *audio)
                try:
                    for packet in packets:
                        if packet.stream.type == "audio":
                            if packet.dts is None:
                                continue
                            packet.stream = audio_out[packet.stream.index]
                            out.mux(packet)
                            continue
                        for frame in packet.decode():
                            count += 1
                            if count > limits.max_frames:
                                raise VideoError(
                                    f"{src}: more than {limits.max_frames} frames, "
                                    "over the limit"
                                )
                            pts = frame.pts if frame.pts is not None else None
                            if pts is not None and frame.time_base:
                                if float(pts * frame.time_base) > limits.max_seconds:
                                    raise VideoError(
                                        f"{src}: longer than {limits.max_seconds:g} s, "
                                        "over the limit"
                                    )
                            rgb = frame.to_ndarray(format="rgb24")[:height, :width]
                            colored = state.frame(rgb)
                            new = av.VideoFrame.from_ndarray(colored, format="rgb24")
                            if pts is None:
                                pts = _next_pts(last_pts, rate, stream.time_base)
                            new.pts = last_pts = pts
                            first_pts = pts if first_pts is None else first_pts
                            new.time_base = stream.time_base
                            for out_packet in video_out.encode(new):
                                out.mux(out_packet)
                            if progress is not None:
                                progress(count, expected)
                except av.FFmpegError as err:
                    raise VideoError(
                        f"{src}: corrupt video at frame {count + 1} "
                        f"({_av_message(err)})"
                    ) from None
                if count == 0:
                    raise VideoError(f"{src}: the video stream has no frames")
                if state.pending_hints is not None:
                    raise HintError(
                        f"hint frame {hint_frame} is beyond the clip's {count} frames"
                    )
                for out_packet in video_out.encode(None):
                    out.mux(out_packet)
            os.replace(tmp, dst)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    seconds = float((last_pts - first_pts) * stream.time_base + 1 / rate)
    return VideoResult(
        path=dst,
        frames=count,
        keyframes=state.stabilizer.keyframes,
        cuts=max(state.stabilizer.cuts, 0),
        seconds=seconds,
        frame_rate=rate,
        audio_streams=len(audio),
        encoder=encoder,
        hints_kept=len(state.points),
        width=width,
        height=height,
    )


def _next_pts(last: int | None, rate: Fraction, time_base: Fraction) -> int:
    """The time stamp after `last` at `rate` frames/s, in `time_base` units."""
    step = int(round(1 / (rate * time_base))) if time_base else 1
    return 0 if last is None else last + max(step, 1)


class _Run:
    """One clip's colorization state: the stabilizer and the hints on the way."""

    def __init__(
        self,
        colorizer: Colorizer,
        stabilizer: ChromaStabilizer,
        size: int,
        temperature: float,
        saturation: float,
        space: str,
        frame_hw: tuple[int, int],
    ) -> None:
        self.colorizer = colorizer
        self.stabilizer = stabilizer
        self.size = size
        self.temperature = temperature
        self.saturation = saturation
        self.space = space
        self.frame_hw = frame_hw
        self.shape = colorizer._shape(frame_hw, size)
        self.chroma_hw: tuple[int, int] | None = None
        self.points: list[tuple[float, float, tuple[int, int, int]]] = []
        self.pending_hints: list[Hint] | None = None
        self.hint_frame = 0
        # hint points of the frames before hint_frame (of its scene), from
        # _hints_before; each is taken on its frame
        self.before: dict[int, list[tuple[float, float, tuple[int, int, int]]]] = {}
        self.index = -1

    def frame(self, rgb: UInt8Array) -> UInt8Array:
        """Colorize one decoded frame, uint8 (H, W, 3) -> uint8 (H, W, 3)."""
        from core.colorizer import _compose_luma, pixels_to_luma

        self.index += 1
        luma = pixels_to_luma(rgb, self.space)
        lightness = luma if self.space == "lab" else luma * 100.0
        hinted = self._take_hints()
        early = self.before.pop(self.index, None)
        if early is not None:
            self.points = early
        if self.chroma_hw is None:  # the first frame: its chroma gives the shape
            chroma = self._predict(luma)
            self.chroma_hw = chroma.shape[:2]
            self.stabilizer.start(_small_gray(lightness, self.chroma_hw))
            chroma = self.stabilizer.finish(chroma)
        else:
            if hinted:
                self.stabilizer.force_keyframe()
            need = self.stabilizer.start(_small_gray(lightness, self.chroma_hw))
            if self.points and not hinted and early is None:
                self.points = _track_hints(self.points, self.stabilizer, self.frame_hw)
            chroma = self.stabilizer.finish(self._predict(luma) if need else None)
        image = _compose_luma(luma, chroma * self.saturation, None, self.space)
        return np.asarray(image)

    def _take_hints(self) -> bool:
        """Take the pending hints when this is their frame; True when taken."""
        if self.pending_hints is None or self.index != self.hint_frame:
            return False
        self.points = self.checked_hints()
        self.pending_hints = None
        return True

    def checked_hints(self) -> list[tuple[float, float, tuple[int, int, int]]]:
        """The pending hints, checked, as float points; raises HintError."""
        from core.colorizer import _check_hints

        h, w = self.frame_hw
        checked = _check_hints(self.pending_hints or [], w, h)
        return [(float(x), float(y), c) for x, y, c in checked]

    def small_gray(self, rgb: UInt8Array) -> tuple[FloatArray, UInt8Array]:
        """A frame's luma and its grey frame at the chroma's resolution (the flow's),
        running the network once on the first frame for that resolution."""
        from core.colorizer import pixels_to_luma

        luma = pixels_to_luma(rgb, self.space)
        lightness = luma if self.space == "lab" else luma * 100.0
        if self.chroma_hw is None:
            self.chroma_hw = self._predict(luma).shape[:2]
        return luma, _small_gray(lightness, self.chroma_hw)

    def _predict(self, luma: FloatArray) -> FloatArray:
        colorizer = self.colorizer
        maps = None
        if colorizer.takes_hints:
            ints = [
                (int(round(x)) if x < self.frame_hw[1] - 0.5 else int(x), int(y), c)
                for x, y, c in self.points
            ]
            maps = [colorizer._hint_maps(ints, luma.shape, self.shape)]
        return colorizer._predict_chroma(
            [luma], self.shape, [(0, 0)], self.temperature, maps
        )[0]


def _hints_before(
    run: _Run,
    src: Path,
    limits: VideoLimits,
    frame_hw: tuple[int, int],
    options: StabilizeOptions,
) -> dict[int, list[tuple[float, float, tuple[int, int, int]]]]:
    """The hint points of the frames before `run.hint_frame` in its scene.

    A first pass decodes frames 0..hint_frame as grey frames at the flow's
    resolution, finds the hint frame's scene start with the stabiliser's cut test
    (keeping only the grey frames since the last cut), then tracks the hint points
    backward from the hint frame to the scene start with the same flow and
    reliability test as forward. Returns {frame index: points}; frames of earlier
    scenes get none. Raises HintError when the clip has no frame `hint_frame` or a
    hint is outside the frame.
    """
    from core.colorizer import HintError

    points = run.checked_hints()
    height, width = frame_hw
    cuts = ChromaStabilizer(options)  # its cut test only
    grays: list[UInt8Array | None] = []  # grey frames from the scene start
    start, count = 0, 0
    for index, rgb in enumerate(read_frames(src, limits)):
        if index > run.hint_frame:
            break
        count = index + 1
        gray = run.small_gray(rgb[:height, :width])[1]
        cuts.start(gray)
        if cuts.cut:
            grays, start = [], index
        grays.append(gray)
    if count <= run.hint_frame:
        raise HintError(
            f"hint frame {run.hint_frame} is beyond the clip's {count} frames"
        )
    dis = _dis()
    first = grays[0]
    assert first is not None
    ys, xs = np.mgrid[0 : first.shape[0], 0 : first.shape[1]]
    grid = (xs.astype(np.float32), ys.astype(np.float32))
    before = {}
    for t in range(run.hint_frame - 1, start - 1, -1):
        later, gray = grays[t + 1 - start], grays[t - start]
        assert later is not None and gray is not None
        grays[t + 1 - start] = None
        if points:
            # the flow from frame t+1 back to frame t, reliable on frame t's pixels
            _x, _y, back, reliable = _tracked(
                dis, gray, later, grid, options.brightness_tolerance
            )
            points = _move_points(points, back, reliable, run.frame_hw)
        before[t] = points
    return before


# ------------------------------------------------------------------ measures


def _lab_small(rgb: UInt8Array, size: int) -> FloatArray:
    import cv2

    h, w = rgb.shape[:2]
    scale = min(1.0, size / max(h, w))
    if scale < 1.0:
        rgb = cv2.resize(
            rgb, (max(1, round(w * scale)), max(1, round(h * scale))), cv2.INTER_AREA
        )
    return rgb_to_lab(rgb).astype(np.float32)


def flicker(
    frames: Iterable[UInt8Array],
    originals: Iterable[UInt8Array],
    cuts: Collection[int] = (),
    size: int = 256,
) -> float:
    """Mean ab difference between consecutive frames after motion compensation.

    frames: the clip to measure, uint8 (H, W, 3) sRGB frames. originals: the same
    clip's original frames (uint8 (H, W, 3); colour or grey), whose grey (CIE L) gives
    the motion, so that different colorizations of a clip are measured on one motion.
    cuts: indices of frames that start a new scene (the pair before each is skipped).
    Both are measured at longer side `size`. For each pair of consecutive frames, the
    flow from frame t to t-1 (DIS, medium preset) warps frame t-1's ab onto frame t;
    the Euclidean ab distance (CIE units) is averaged over the pixels where the flow
    is forward-backward consistent and inside the frame, then over the pairs.
    Returns the mean in CIE ab units (0 when there is no pair).
    """
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    cut_set = set(cuts)
    total, pairs = 0.0, 0
    prev_gray: UInt8Array | None = None
    prev_ab: FloatArray | None = None
    grid: tuple[FloatArray, FloatArray] | None = None
    for t, (rgb, original) in enumerate(zip(frames, originals, strict=True)):
        lab = _lab_small(rgb, size)
        gray = np.clip(_lab_small(original, size)[..., 0] * 2.55 + 0.5, 0, 255)
        gray = gray.astype(np.uint8)
        if prev_gray is not None and t not in cut_set and prev_ab is not None:
            if grid is None:
                ys, xs = np.mgrid[0 : gray.shape[0], 0 : gray.shape[1]]
                grid = (xs.astype(np.float32), ys.astype(np.float32))
            map_x, map_y, _forward, reliable = _tracked(
                dis, gray, prev_gray, grid, tolerance=255.0
            )
            warped = cv2.remap(prev_ab, map_x, map_y, cv2.INTER_LINEAR)
            diff = np.sqrt(np.sum(np.square(lab[..., 1:] - warped), axis=-1))
            if reliable.any():
                total += float(diff[reliable].mean())
                pairs += 1
        prev_gray, prev_ab = gray, np.ascontiguousarray(lab[..., 1:])
    return total / pairs if pairs else 0.0


def clip_psnr(frames: Iterable[UInt8Array], originals: Iterable[UInt8Array]) -> float:
    """Mean over frames of the PSNR (dB, `core.metrics.psnr`) of each uint8
    (H, W, 3) frame against its original colour frame of the same shape."""
    from core.metrics import psnr

    values = [psnr(o, f) for f, o in zip(frames, originals, strict=True)]
    return float(np.mean(values)) if values else 0.0


# ------------------------------------------------------------------ command line


def colorize_video_file(
    colorizer: Colorizer,
    source: Path,
    target: Path,
    *,
    size: int | None,
    temperature: float,
    saturation: float,
    limits: VideoLimits,
    stabilize: bool = True,
    hints: Sequence[Hint] | None = None,
    hints_source: str = "",
    hint_frame: int = 0,
    overwrite: bool = False,
    quiet: bool = False,
) -> str | None:
    """The command line's video job: colorize `source` into `target` with a progress
    bar in frames on stderr (off when `quiet` or stderr is not a terminal).

    Returns None on success, else a one-line `<source>: <reason>` message. Temporary
    files that an interrupted earlier run left beside `target` are removed first.
    """
    import sys

    from tqdm import tqdm

    from core.atomic import remove_stale_temps
    from core.colorizer import HintError

    for path in remove_stale_temps(target.parent, suffix=target.suffix):
        log.info("removed %s, left by an interrupted earlier run", path)
    bar = tqdm(
        desc=source.name,
        unit="frame",
        file=sys.stderr,
        disable=quiet or not sys.stderr.isatty(),
    )

    def progress(done: int, expected: int) -> None:
        if expected and bar.total != expected:
            bar.total = expected
        bar.update(done - bar.n)

    try:
        result = colorize_video(
            colorizer,
            source,
            target,
            size,
            stabilize=stabilize,
            hints=hints,
            hint_frame=hint_frame,
            temperature=temperature,
            saturation=saturation,
            limits=limits,
            progress=progress,
            overwrite=overwrite,
        )
    except VideoError as err:
        message = " ".join(str(err).split())
        return message if message.startswith(str(source)) else f"{source}: {message}"
    except HintError as err:
        return f"{source}: {hints_source or 'hints'}: {err}"
    except OSError as err:
        return f"{source}: cannot write {target}: {err.strerror or err}"
    finally:
        bar.close()
    log.debug(
        "%s -> %s (%d frames, %d keyframes)",
        source,
        target,
        result.frames,
        result.keyframes,
    )
    return None
