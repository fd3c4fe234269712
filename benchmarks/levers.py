"""Each speed lever tried for issue 7, measured against its alternative in one run.

Called by `python -m benchmarks.run`; each entry of the returned dict has a "before"
(the plain or previous way) and an "after" (the way the code now works, or the tried
alternative for a lever that was not kept), both timed in this process, so that
docs/performance.md can say what each kept change bought and why the others were
dropped. The plain ways are written here from core's public functions, exactly as the
code before issue 7 computed them.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from core.colorizer import Colorizer, compose, pixels_to_luma
from core.colorspace import lab_to_rgb, rgb_to_lab
from core.imageio import encode_png, load_image, load_pixels
from core.models import create_model
from core.quantize import ANNEALED_T, bin_centers, decode_logits

__all__ = ["measure_levers", "network_settings"]

log = logging.getLogger(__name__)

SIDE = 256


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000.0


def _pair(
    what: str,
    before: tuple[str, Callable[[], object]],
    after: tuple[str, Callable[[], object]],
    repeats: int,
    kept: bool,
) -> dict[str, Any]:
    """Time two ways of doing one thing, alternating, and compare their medians."""
    before_ms = _median_ms(before[1], 1)
    after_ms = _median_ms(after[1], 1)
    befores, afters = [before_ms], [after_ms]
    for _ in range(repeats - 1):
        befores.append(_median_ms(before[1], 1))
        afters.append(_median_ms(after[1], 1))
    b, a = float(np.median(befores)), float(np.median(afters))
    return {
        "what": what,
        "before": before[0],
        "after": after[0],
        "before_ms": b,
        "after_ms": a,
        "speedup": b / a,
        "kept": kept,
    }


def _network(model: keras.Model, jit: bool = False) -> Callable[[], object]:
    x = tf.constant(
        np.random.default_rng(0).uniform(0, 1, (1, SIDE, SIDE, 1)).astype(np.float32)
    )
    fn = tf.function(
        lambda t: model(t, training=False), jit_compile=jit, autograph=False
    )
    graph = fn.get_concrete_function(tf.TensorSpec(x.shape, tf.float32))
    return lambda: graph(x).numpy()


def _decoding(model: keras.Model, in_graph: bool) -> Callable[[], object]:
    """The default network at a 1 MP photo's shape, decoded to ab by annealed mean."""
    x = tf.constant(
        np.random.default_rng(0).uniform(0, 1, (1, 160, SIDE, 1)).astype(np.float32)
    )
    centers = tf.constant(bin_centers())

    def decoded(t: tf.Tensor) -> tf.Tensor:
        p = tf.nn.softmax(model(t, training=False) / ANNEALED_T, axis=-1)
        return tf.tensordot(p, centers, axes=1)

    if in_graph:
        graph = tf.function(decoded, autograph=False).get_concrete_function(x)
        return lambda: graph(x).numpy()
    raw = tf.function(lambda t: model(t, training=False), autograph=False)
    raw = raw.get_concrete_function(x)
    return lambda: decode_logits(raw(x).numpy(), ANNEALED_T)


def _bf16_default() -> keras.Model:
    """default-v1 built under Keras' mixed_bfloat16 policy."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        return create_model("default-v1", pretrained=False)
    finally:
        keras.config.set_dtype_policy(previous)


def _plain_compose(lightness: np.ndarray, ab_small: np.ndarray) -> Image.Image:
    """The whole-image compose of the code before issue 7."""
    h, w = lightness.shape
    ab = tf.image.resize(ab_small, (h, w), method="bilinear").numpy()
    full = np.concatenate([lightness[..., None], ab], axis=-1)
    return Image.fromarray(np.round(lab_to_rgb(full) * 255.0).astype(np.uint8))


def _pillow_png(image: Image.Image, level: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=level)
    return buffer.getvalue()


def _png_levers(image: Image.Image, label: str, repeats: int) -> list[dict[str, Any]]:
    sizes = {
        "pillow6": len(_pillow_png(image, 6)),
        "pillow1": len(_pillow_png(image, 1)),
        "ours": len(encode_png(image)),
    }
    out = []
    for name, level in (("pillow6", 6), ("pillow1", 1)):
        entry = _pair(
            f"PNG encode, {label}",
            (
                f"Pillow, compress_level {level}",
                lambda lv=level: _pillow_png(image, lv),
            ),
            (
                "encode_png: Up filter, zlib 2, strips on all cores",
                lambda: encode_png(image),
            ),
            repeats,
            kept=True,
        )
        entry["before_bytes"], entry["after_bytes"] = sizes[name], sizes["ours"]
        entry["size_ratio"] = sizes["ours"] / sizes[name]
        out.append(entry)
    return out


def measure_levers(
    colorizer: Colorizer, photos: dict[str, Any], repeats: int, full: bool
) -> dict[str, Any]:
    """Every lever's before and after, in ms (see the module docstring).

    full: also the levers that trace or compile networks, the 12 MP PNGs and the
    TensorFlow settings (fresh processes); --quick measures only the cheap ones.
    """
    levers: dict[str, Any] = {}
    if full:
        levers.update(_network_levers(repeats))
    path12 = photos["12mp"]
    pixels, _alpha = load_pixels(path12)
    levers["luma_12mp"] = _pair(
        "decode and lightness of a 12 MP grey JPEG",
        (
            "float RGB, rgb_to_lab of the whole image",
            lambda: rgb_to_lab(load_image(path12)[0])[..., 0],
        ),
        (
            "8-bit grey kept, lightness by table",
            lambda: pixels_to_luma(load_pixels(path12)[0]),
        ),
        repeats,
        kept=True,
    )
    lightness = pixels_to_luma(pixels)
    ab_small = colorizer.output_to_chroma(colorizer.predict_output(lightness))
    lab = np.broadcast_to(lightness[..., None], (*lightness.shape, 3))  # only L is read
    levers["compose_12mp"] = _pair(
        "upsample chroma, Lab to 8-bit RGB, 12 MP",
        (
            "whole image: tf.image.resize, lab_to_rgb",
            lambda: _plain_compose(lightness, ab_small),
        ),
        ("bands of 64k pixels on all cores", lambda: compose(lab, ab_small)),
        repeats,
        kept=True,
    )
    for label, key in (("1 MP", "1mp"), ("12 MP", "12mp"))[: 2 if full else 1]:
        image = colorizer.colorize(photos[key])
        for entry in _png_levers(image, label, repeats):
            suffix = "level6" if "6" in entry["before"] else "level1"
            levers[f"png_{key}_{suffix}"] = entry
    if full:
        levers["network_settings"] = network_settings()
    return levers


def _network_levers(repeats: int) -> dict[str, Any]:
    """XLA, decoding inside the graph and bfloat16, on default-v1's network (the
    default one when these levers were measured; it takes no hint inputs)."""
    fp32 = create_model("default-v1", pretrained=False)
    traced = _network(fp32)
    return {
        "xla": _pair(
            "default-v1 network, 256x256, batch 1",
            ("tf.function", traced),
            ("tf.function(jit_compile=True)", _network(fp32, jit=True)),
            repeats,
            kept=False,
        ),
        "decode_in_graph": _pair(
            "default-v1 network and annealed mean, 160x256 (a 1 MP photo)",
            ("logits to numpy, decode_logits", _decoding(fp32, in_graph=False)),
            ("softmax and bin centres inside the traced graph", _decoding(fp32, True)),
            repeats,
            kept=True,
        ),
        "bf16_inference": _pair(
            "default-v1 network, 256x256, batch 1",
            ("float32", traced),
            ("mixed bfloat16", _network(_bf16_default())),
            repeats,
            kept=False,
        ),
    }


# A fresh interpreter per setting: oneDNN and thread counts are fixed when TensorFlow
# starts.
_SETTINGS_CHILD = """
import json, sys, time
import numpy as np
import tensorflow as tf
threads = int(sys.argv[1])
if threads:
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
from core.models import create_model
from core.quantize import ANNEALED_T, bin_centers, decode_logits
model = create_model("default-v1", pretrained=False)
x = tf.constant(np.random.default_rng(0).uniform(0, 1, (1, 256, 256, 1)), tf.float32)
graph = tf.function(lambda t: model(t, training=False), autograph=False)
graph = graph.get_concrete_function(x)
graph(x)
times = []
for _ in range(9):
    start = time.perf_counter()
    graph(x).numpy()
    times.append(time.perf_counter() - start)
print(json.dumps({"median_ms": 1000 * float(np.median(times))}))
"""


def network_settings() -> dict[str, Any]:
    """The default network (256, batch 1) in fresh processes with other TF settings."""
    settings = {
        "defaults (oneDNN on, threads = cores)": ({}, 0),
        "oneDNN off": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, 0),
        "1 intra-op thread, 1 inter-op": ({}, 1),
    }
    out: dict[str, Any] = {
        "what": "default-v1 network, 256x256, batch 1",
        "settings": {},
    }
    root = Path(__file__).resolve().parents[1]
    for name, (env, threads) in settings.items():
        done = subprocess.run(
            [sys.executable, "-c", _SETTINGS_CHILD, str(threads)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env},
            cwd=root,
        )
        out["settings"][name] = json.loads(done.stdout.strip().splitlines()[-1])
    return out
