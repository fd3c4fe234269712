"""Small real inputs made here, without ../shared: scikit-image's sample photos."""

from pathlib import Path

import skimage.data
from PIL import Image

from training.shard import ShardConfig, write_shards


def sample_shards(root: Path, names: tuple[str, ...], suffix: str = ".png") -> Path:
    """Save scikit-image's photos `names` (e.g. "astronaut") into root/photos and
    pack them as .tar shards of 2 photos into root/shards; returns the shard folder."""
    photos = root / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(getattr(skimage.data, name)()).save(photos / f"{name}{suffix}")
    shards = root / "shards"
    write_shards(ShardConfig(src=str(photos), out=str(shards), per_shard=2))
    return shards
