"""tf.data input pipeline: folders of photos and WebDataset-style `.tar` shards.

A source is a folder (searched recursively for images and `.tar` shards), a single shard
or image file, or a glob. Shards are streamed member by member (never read whole into
memory); each sample's encoded bytes are decoded by TensorFlow inside the parallel map.

Training examples are random crops with scale jitter and horizontal flips, converted to
Lab on the fly (COLORIZATION.md 1.6): the network input is the grey rendering g(L) of
the crop, the target the crop's ab at the model's output resolution.
"""

from __future__ import annotations

import glob
import logging
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from core.colorspace import rgb_to_lab_tf

__all__ = [
    "IMAGE_SUFFIXES",
    "PipelineConfig",
    "count_images",
    "iter_encoded",
    "list_sources",
    "make_dataset",
    "lab_example",
]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class PipelineConfig:
    size: int = 160  # crop side fed to the network
    output_stride: int = 2  # the model predicts chroma at size / output_stride
    batch_size: int = 16
    min_scale: float = 0.35  # smallest crop area as a fraction of the photo
    shuffle_buffer: int = 512
    augment: bool = True


def list_sources(paths: list[str] | str) -> list[Path]:
    """Expand folders, globs and files into a sorted list of shards and image files."""
    if isinstance(paths, str | Path):
        paths = [str(paths)]
    found: list[Path] = []
    for p in paths:
        matches = [Path(m) for m in sorted(glob.glob(str(p)))] or [Path(p)]
        for m in matches:
            if m.is_dir():
                found += sorted(
                    f
                    for f in m.rglob("*")
                    if f.is_file() and f.suffix.lower() in (*IMAGE_SUFFIXES, ".tar")
                )
            elif m.is_file():
                found.append(m)
            else:
                raise FileNotFoundError(f"no such data path: {p}")
    if not found:
        raise FileNotFoundError(f"no images or .tar shards under {paths}")
    return found


def _is_image_member(member: tarfile.TarInfo) -> bool:
    return member.isfile() and Path(member.name).suffix.lower() in IMAGE_SUFFIXES


def iter_encoded(sources: list[Path]) -> Iterator[tuple[str, bytes]]:
    """Yield (key, encoded image bytes) from image files and shards, in order."""
    for src in sources:
        if src.suffix.lower() != ".tar":
            yield src.stem, src.read_bytes()
            continue
        with tarfile.open(src, mode="r|") as tar:  # streaming: one member at a time
            for member in tar:
                if not _is_image_member(member):
                    continue
                key = member.name.rpartition("/")[2].partition(".")[0]
                f = tar.extractfile(member)
                if f is not None:
                    yield key, f.read()


def count_images(sources: list[Path]) -> int:
    """Number of images in the sources (shards are scanned by header only)."""
    n = 0
    for src in sources:
        if src.suffix.lower() != ".tar":
            n += 1
            continue
        with tarfile.open(src, mode="r|") as tar:
            n += sum(1 for m in tar if _is_image_member(m))
    return n


def _decode(data: tf.Tensor) -> tf.Tensor:
    img = tf.io.decode_image(data, channels=3, expand_animations=False)
    img.set_shape([None, None, 3])
    return tf.image.convert_image_dtype(img, tf.float32)


def _random_crop(rgb: tf.Tensor, cfg: PipelineConfig, seed: tf.Tensor) -> tf.Tensor:
    """Square crop of min_scale..1 of the shorter side squared, resized to size."""
    seeds = tf.random.experimental.stateless_split(seed, 4)
    shape = tf.shape(rgb)
    h, w = shape[0], shape[1]
    side_max = tf.minimum(h, w)
    frac = tf.sqrt(
        tf.random.stateless_uniform([], seeds[0], minval=cfg.min_scale, maxval=1.0)
    )
    side = tf.maximum(tf.cast(tf.cast(side_max, tf.float32) * frac, tf.int32), 1)
    y0 = tf.random.stateless_uniform([], seeds[1], 0, h - side + 1, dtype=tf.int32)
    x0 = tf.random.stateless_uniform([], seeds[2], 0, w - side + 1, dtype=tf.int32)
    crop = rgb[y0 : y0 + side, x0 : x0 + side]
    crop = tf.image.resize(crop, [cfg.size, cfg.size], antialias=True)
    flip = tf.random.stateless_uniform([], seeds[3]) < 0.5
    crop = tf.cond(flip, lambda: tf.image.flip_left_right(crop), lambda: crop)
    return tf.clip_by_value(crop, 0.0, 1.0)


def _center_resize(rgb: tf.Tensor, cfg: PipelineConfig) -> tf.Tensor:
    """Centre square crop of the whole shorter side, resized to size (validation)."""
    shape = tf.shape(rgb)
    side = tf.minimum(shape[0], shape[1])
    crop = tf.image.resize_with_crop_or_pad(rgb, side, side)
    crop = tf.image.resize(crop, [cfg.size, cfg.size], antialias=True)
    return tf.clip_by_value(crop, 0.0, 1.0)


def lab_example(rgb: tf.Tensor, output_stride: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Network input and target of one RGB crop.

    rgb: float32 (S, S, 3) in [0, 1].
    Returns (lightness (S, S, 1) in [0, 100], ab (S/stride, S/stride, 2) in CIE units).
    """
    lab = rgb_to_lab_tf(rgb)
    ab = lab[..., 1:]
    if output_stride > 1:
        ab = tf.nn.avg_pool2d(ab[None], output_stride, output_stride, "VALID")[0]
    return lab[..., :1], ab


def make_dataset(
    paths: list[str] | str,
    cfg: PipelineConfig,
    *,
    training: bool,
    seed: int = 0,
    repeat: bool | None = None,
) -> tf.data.Dataset:
    """Batched (lightness, ab) pairs from folders, shards or globs.

    training=True: shuffled, randomly cropped and flipped, repeated forever.
    training=False: centre crops in file order, one pass.
    Yields lightness float32 (B, S, S, 1) in [0, 100] and ab float32
    (B, S/stride, S/stride, 2).
    """
    sources = list_sources(paths)
    repeat = training if repeat is None else repeat
    rng = np.random.default_rng(seed)

    def gen() -> Iterator[bytes]:
        order = list(sources)
        if training:
            rng.shuffle(order)
        for _key, data in iter_encoded(order):
            yield data

    ds = tf.data.Dataset.from_generator(
        gen, output_signature=tf.TensorSpec([], tf.string)
    )
    if repeat:
        ds = ds.repeat()
    if training and cfg.shuffle_buffer > 1:
        ds = ds.shuffle(cfg.shuffle_buffer, seed=seed)
    # a per-example seed, so crops are reproducible for a given --seed
    ds = tf.data.Dataset.zip(ds, tf.data.Dataset.random(seed=seed).batch(2))

    def prepare(data: tf.Tensor, pair: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        rgb = _decode(data)
        if training and cfg.augment:
            crop = _random_crop(rgb, cfg, pair)
        else:
            crop = _center_resize(rgb, cfg)
        return lab_example(crop, cfg.output_stride)

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(cfg.batch_size, drop_remainder=training)
    return ds.prefetch(tf.data.AUTOTUNE)
