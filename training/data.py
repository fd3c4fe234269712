"""tf.data input pipeline: folders of photos and WebDataset-style `.tar` shards.

A source is a folder (searched recursively for images and `.tar` shards), a single shard
or image file, or a glob. Sources are indexed first (the byte offset and length of every
image, read from the tar headers only); the pipeline then reads each encoded image as
one fixed-length record at its offset, so nothing is ever loaded whole into memory and
the pipeline is made of TensorFlow ops only: its iterator can be saved in a
`tf.train.Checkpoint` and restored at the exact same position.

Training examples are random crops with scale jitter and horizontal flips, converted to
Lab on the fly (docs/design.md 4.1): the network input is the grey rendering g(L) of
the crop, the target the crop's ab at the model's output resolution. Randomness is
stateless: pass p over the data shuffles the shard order with the seed (seed, p), the
photos inside shard s with (seed, p, s), and crops photo i of shard s with
(seed, p, s, i), so an example's crop does not depend on which worker reads it.

Under `tf.distribute`, each input pipeline (one per worker) reads only its own shards:
sorted sources i, i + n, i + 2n, ... for pipeline i of n (`worker_sources`), and
batches its share of the global batch.
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
from core.errors import InvalidInputError, MissingInputError
from core.imageio import TENSORFLOW_SUFFIXES, images_in_folder
from training.hints import simulate_hints

__all__ = [
    "decode_tf",
    "PipelineConfig",
    "SourceIndex",
    "count_images",
    "index_source",
    "iter_encoded",
    "lab_example",
    "list_sources",
    "make_dataset",
    "worker_sources",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineConfig:
    size: int = 160  # crop side fed to the network
    output_stride: int = 2  # the model predicts chroma at size / output_stride
    batch_size: int = 16  # global: split between the replicas under tf.distribute
    min_scale: float = 0.35  # smallest crop area as a fraction of the photo
    shuffle_buffer: int = 512  # photos mixed across consecutive shards (indices only)
    augment: bool = True
    shuffle: bool = True  # False: sources and photos in file order (training too)
    read_parallelism: int = 8  # photos read at once (one open file each)
    hints: bool = False  # also yield simulated user hints (training/hints.py)


def list_sources(paths: list[str] | str) -> list[Path]:
    """Expand folders, globs and files into a sorted list of shards and image files."""
    if isinstance(paths, str | Path):
        paths = [str(paths)]
    found: list[Path] = []
    for p in paths:
        matches = [Path(m) for m in sorted(glob.glob(str(p)))] or [Path(p)]
        for m in matches:
            if m.is_dir():
                found += images_in_folder(
                    m, (*TENSORFLOW_SUFFIXES, ".tar"), hidden=True
                )
            elif m.is_file():
                found.append(m)
            else:
                raise MissingInputError(f"no such data path: {p}")
    if not found:
        raise MissingInputError(f"no images or .tar shards under {paths}")
    return found


def _is_image_member(member: tarfile.TarInfo) -> bool:
    return (
        member.isfile()
        and member.size > 0
        and Path(member.name).suffix.lower() in TENSORFLOW_SUFFIXES
    )


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


@dataclass(frozen=True, eq=False)
class SourceIndex:
    """Where the encoded images of one source lie inside its file.

    offsets, sizes: int64 (n,) byte offset and length of each image, in file order.
    An image file is one image at offset 0; a shard has one entry per image member.
    """

    path: Path
    file_size: int
    offsets: np.ndarray
    sizes: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets)


def index_source(path: Path) -> SourceIndex:
    """Index one image file or uncompressed `.tar` shard (tar headers only are read)."""
    path = Path(path)
    file_size = path.stat().st_size
    if path.suffix.lower() != ".tar":
        return SourceIndex(
            path, file_size, np.zeros(1, np.int64), np.full(1, file_size)
        )
    offsets: list[int] = []
    sizes: list[int] = []
    try:
        # "r:" reads an uncompressed tar with seeks, skipping the member data
        with tarfile.open(path, mode="r:") as tar:
            for member in tar:
                if _is_image_member(member):
                    offsets.append(member.offset_data)
                    sizes.append(member.size)
    except tarfile.ReadError as err:
        raise InvalidInputError(
            f"{path} is not an uncompressed tar shard ({err}); "
            "make shards with python -m training.shard"
        ) from err
    return SourceIndex(
        path, file_size, np.asarray(offsets, np.int64), np.asarray(sizes, np.int64)
    )


def count_images(sources: list[Path]) -> int:
    """Number of images in the sources (shards are scanned by header only)."""
    return sum(len(index_source(src)) for src in sources)


def worker_sources(
    sources: list[Path], input_context: tf.distribute.InputContext | None
) -> list[int]:
    """Positions in `sources` that one input pipeline reads: i, i + n, i + 2n, ...

    With no context (or a single pipeline) every source is read. Raises ValueError
    when there are fewer sources than pipelines.
    """
    if input_context is None or input_context.num_input_pipelines == 1:
        return list(range(len(sources)))
    n, i = input_context.num_input_pipelines, input_context.input_pipeline_id
    if len(sources) < n:
        raise InvalidInputError(
            f"{len(sources)} data sources cannot be split between {n} workers; "
            "write more shards (python -m training.shard ... --per-shard N)"
        )
    return list(range(i, len(sources), n))


def decode_tf(data: tf.Tensor | bytes) -> tf.Tensor:
    """The training pipeline's decoder: an encoded photo (JPEG, PNG, BMP, WebP; the
    first frame) -> uint8 (H, W, 3) RGB. Raises tf.errors.InvalidArgumentError for
    data it cannot decode."""
    rgb = tf.io.decode_image(data, channels=3, expand_animations=False)
    rgb.set_shape([None, None, 3])
    return rgb


def _decode(data: tf.Tensor) -> tf.Tensor:
    return tf.image.convert_image_dtype(decode_tf(data), tf.float32)


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
    return lab_example_from_lab(rgb_to_lab_tf(rgb), output_stride)


def lab_example_from_lab(
    lab: tf.Tensor, output_stride: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """`lab_example` of a crop already in Lab, float32 (S, S, 3)."""
    ab = lab[..., 1:]
    if output_stride > 1:
        ab = tf.nn.avg_pool2d(ab[None], output_stride, output_stride, "VALID")[0]
    return lab[..., :1], ab


def _stateless_seed(*parts: tf.Tensor | int) -> tf.Tensor:
    """A stateless-op seed, int64 (2,), that depends on every part (ints >= 0)."""
    seed = tf.stack([tf.constant(0, tf.int64), tf.cast(parts[0], tf.int64)])
    for part in parts[1:]:
        seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(part, tf.int64))
    return seed


def make_dataset(
    paths: list[str] | str,
    cfg: PipelineConfig,
    *,
    training: bool,
    seed: int = 0,
    repeat: bool | None = None,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """Batched (lightness, ab) pairs, or (lightness, ab, hints) triples with
    cfg.hints, from folders, shards or globs.

    training=True: shuffled (unless cfg.shuffle is False), randomly cropped and
    flipped, repeated forever, full batches only.
    training=False: centre crops in file order, one pass.
    input_context: this pipeline reads only its own sources (`worker_sources`) and
    batches its share of the global batch, cfg.batch_size / pipelines examples.
    Yields lightness float32 (B, S, S, 1) in [0, 100] and ab float32
    (B, S/stride, S/stride, 2); with cfg.hints also hints float32 (B, S, S, 3), hint
    ab / 110 and mask (`training.hints.simulate_hints`; zeros when not training).
    """
    sources = list_sources(paths)
    own = worker_sources(sources, input_context)
    index = [index_source(sources[i]) for i in own]
    repeat = training if repeat is None else repeat
    shuffle = training and cfg.shuffle
    batch = cfg.batch_size
    if input_context is not None:
        batch, rest = divmod(cfg.batch_size, input_context.num_input_pipelines)
        if rest or not batch:
            raise InvalidInputError(
                f"batch {cfg.batch_size} does not split evenly between "
                f"{input_context.num_input_pipelines} input pipelines"
            )

    counts = np.array([len(x) for x in index], np.int64)
    if counts.sum() == 0:
        raise MissingInputError(f"no images in {paths}")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    # one row per photo: its source (position in `own`), member number, bytes
    row_src = tf.constant(np.repeat(np.arange(len(index)), counts), tf.int64)
    row_member = tf.constant(np.concatenate([np.arange(c) for c in counts]), tf.int64)
    row_offset = tf.constant(np.concatenate([x.offsets for x in index]), tf.int64)
    row_size = tf.constant(np.concatenate([x.sizes for x in index]), tf.int64)
    row_footer = tf.constant(
        np.concatenate([x.file_size - x.offsets - x.sizes for x in index]), tf.int64
    )
    src_path = tf.constant([str(x.path) for x in index])
    src_start, src_count = tf.constant(starts), tf.constant(counts)
    src_id = tf.constant(np.asarray(own, np.int64))  # position among all sources

    def one_pass(p: tf.Tensor) -> tf.data.Dataset:
        order = tf.range(len(index), dtype=tf.int64)
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(
                order, _stateless_seed(seed, p)
            )

        def photos(k: tf.Tensor) -> tf.data.Dataset:
            rows = tf.range(src_start[k], src_start[k] + src_count[k])
            if shuffle:
                rows = tf.random.experimental.stateless_shuffle(
                    rows, _stateless_seed(seed, p, src_id[k])
                )
            return tf.data.Dataset.from_tensor_slices(rows)

        rows = tf.data.Dataset.from_tensor_slices(order).flat_map(photos)
        return rows.map(lambda row: (row, p))

    passes = tf.data.Dataset.counter() if repeat else tf.data.Dataset.range(1)
    ds = passes.flat_map(one_pass)
    if shuffle and cfg.shuffle_buffer > 1:
        ds = ds.shuffle(cfg.shuffle_buffer, seed=seed)

    def read(row: tf.Tensor, p: tf.Tensor) -> tf.data.Dataset:
        k = row_src[row]
        record = tf.data.FixedLengthRecordDataset(
            tf.gather(src_path, k),
            row_size[row],
            header_bytes=row_offset[row],
            footer_bytes=row_footer[row],
        )
        crop_seed = _stateless_seed(seed, p, src_id[k], row_member[row])
        return record.map(lambda data: (data, crop_seed))

    ds = ds.interleave(
        read,
        cycle_length=cfg.read_parallelism,
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )

    def prepare(data: tf.Tensor, crop_seed: tf.Tensor) -> tuple[tf.Tensor, ...]:
        rgb = _decode(data)
        if training and cfg.augment:
            crop = _random_crop(rgb, cfg, crop_seed)
        else:
            crop = _center_resize(rgb, cfg)
        if not cfg.hints:
            return lab_example(crop, cfg.output_stride)
        lab = rgb_to_lab_tf(crop)
        lightness, ab = lab_example_from_lab(lab, cfg.output_stride)
        if training:
            hint_seed = tf.random.experimental.stateless_fold_in(crop_seed, 7)
            hints = simulate_hints(lab[..., 1:], hint_seed)
        else:  # validation measures automatic colorization
            hints = tf.zeros([cfg.size, cfg.size, 3], tf.float32)
        return lightness, ab, hints

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch, drop_remainder=training)
    return ds.prefetch(tf.data.AUTOTUNE)
