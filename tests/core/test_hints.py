"""User hints in the Colorizer: the hint model, the hint maps, colorize and suggest."""

import keras
import numpy as np
import pytest
import skimage.data
import tensorflow as tf
from PIL import Image

from core.colorizer import HINT_PATCH, HintError, hint_maps
from core.colorspace import rgb_to_lab
from core.models import create_model
from core.models.unet import (
    HINT_CELLS,
    HINT_EVIDENCE,
    HintEvidence,
    automatic_model,
)
from core.quantize import bin_centers
from core.weights import WEIGHTS_DIR
from training.init_weights import load_init_weights

SIZE = 64


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """skimage's astronaut, 96 x 128 (w x h): a real photo, small."""
    return Image.fromarray(skimage.data.astronaut()[::4, ::4][:, :96])


@pytest.fixture(scope="module")
def v2_from_shipped() -> tuple[keras.Model, keras.Model]:
    """default with default-v1's shipped layers copied in, and default-v1."""
    v1 = create_model("default-v1", pretrained=False)
    load_init_weights(v1, str(WEIGHTS_DIR / "default-v1.weights.h5"))
    v2 = create_model("default", pretrained=False)
    load_init_weights(
        v2, str(WEIGHTS_DIR / "default-v1.weights.h5"), source_model="default-v1"
    )
    return v1, v2


@pytest.mark.slow
def test_v2_starts_as_the_shipped_model_with_logits_at_stride_4(
    v2_from_shipped,
) -> None:
    v1, v2 = v2_from_shipped
    lab = rgb_to_lab(skimage.data.astronaut()[::4, ::4] / 255.0)
    x = (lab[None, :96, :96, :1] / 100.0).astype(np.float32)
    ab = np.zeros((1, 96, 96, 2), np.float32)
    mask = np.zeros((1, 96, 96, 1), np.float32)
    out1 = v1(x).numpy()
    out2 = v2([x, ab, mask]).numpy()
    assert out1.shape == (1, 48, 48, 313) and out2.shape == (1, 24, 24, 313)
    pooled = tf.nn.avg_pool2d(out1, 2, 2, "VALID").numpy()
    np.testing.assert_allclose(out2, pooled, atol=1e-4)
    # the injections start at zero: before training, and without the weight-free
    # spread, a hint changes only the cells it covers, and those onto its colour
    v2.get_layer("hint_evidence").spread = 0.0
    ab[0, 40:48, 40:48] = (0.4, -0.6)
    mask[0, 40:48, 40:48] = 1.0
    hinted = v2([x, ab, mask]).numpy()
    covered = np.zeros((24, 24), bool)
    covered[10:12, 10:12] = True
    np.testing.assert_allclose(hinted[0][~covered], out2[0][~covered], atol=1e-5)
    nearest = np.argmin(((bin_centers() - (44.0, -66.0)) ** 2).sum(-1))
    assert np.all(hinted[0][covered].argmax(-1) == nearest)


def _one_hint_on_two_lightnesses(
    spread: float, sigma: float = 2.0, dtype: str = "float32"
):
    """HintEvidence on zero logits (1, 16, 16, 313) of a 64 x 64 input whose left
    half has L/100 = 0.3 and right half 0.8, with one blue hint at cell (8, 3) on the
    left. Returns the new logits (16, 16, 313) and the hint's nearest bin."""
    l_norm = np.full((1, 64, 64, 1), 0.3, np.float32)
    l_norm[:, :, 32:] = 0.8
    ab = np.zeros((1, 64, 64, 2), np.float32)
    mask = np.zeros((1, 64, 64, 1), np.float32)
    ab[0, 32:36, 12:16] = (0.2, -0.5)
    mask[0, 32:36, 12:16] = 1.0
    layer = HintEvidence(4, spread=spread, sigma=sigma, bands=6, dtype=dtype)
    logits = np.zeros((1, 16, 16, 313), np.float32)
    out = np.asarray(keras.ops.cast(layer(logits, ab, mask, l_norm), "float32"))[0]
    nearest = np.argmin(((bin_centers() - (22.0, -55.0)) ** 2).sum(-1))
    return out, nearest


def test_hint_evidence_spreads_a_hint_over_its_lightness_only() -> None:
    out, nearest = _one_hint_on_two_lightnesses(spread=3.0)
    assert out[8, 3].argmax() == nearest  # the hinted cell
    # its neighbours of the same lightness take its colour, fading with distance
    assert out[8, 5].argmax() == nearest and out[6, 1].argmax() == nearest
    assert np.ptp(out[8, 5]) > np.ptp(out[8, 7]) > 0
    # across the lightness edge, and far away on its own side, nothing moves
    np.testing.assert_array_equal(out[8, 9], 0.0)
    np.testing.assert_allclose(out[0, 15], 0.0)
    assert np.abs(out[15, 3]).max() < 1e-3 * np.abs(out[8, 5]).max()


def test_hint_evidence_computes_in_float32_under_mixed_precision() -> None:
    # a mixed policy hands the layer bfloat16 inputs; its evidence is float32 math
    exact, nearest = _one_hint_on_two_lightnesses(spread=3.0)
    mixed, _ = _one_hint_on_two_lightnesses(spread=3.0, dtype="mixed_bfloat16")
    assert mixed[8, 3].argmax() == nearest and mixed[8, 5].argmax() == nearest
    np.testing.assert_allclose(mixed, exact, rtol=2e-2, atol=0.5)


def test_hint_evidence_at_the_hint_is_the_soft_encodings_log() -> None:
    # the cell the hint fills gains HINT_EVIDENCE log(q + 1e-6), q the Gaussian
    # (sigma 5) over the bins around the hint colour, from the plain distances
    off, _ = _one_hint_on_two_lightnesses(spread=0.0)
    d2 = ((bin_centers() - (22.0, -55.0)) ** 2).sum(-1)
    q = np.exp(-(d2 - d2.min()) / (2 * 5.0**2))
    expected = HINT_EVIDENCE * np.log(q / q.sum() + 1e-6)
    np.testing.assert_allclose(off[8, 3], expected, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize(
    ("size", "points", "patch"),
    [(160, 12, 9), (32, 3, 5), (128, 0, 1), (96, 40, 20)],
    ids=["training-like", "fewer-cells-than-the-cap", "no-hints", "over-the-cap"],
)
def test_hint_evidence_at_hinted_cells_equals_every_cell(size, points, patch) -> None:
    # the evidence computed only where hints lie (HINT_CELLS at most a photo) is the
    # evidence computed everywhere; past the cap the layer computes it everywhere
    rng = np.random.default_rng(size + points)
    ab = np.zeros((3, size, size, 2), np.float32)
    mask = np.zeros((3, size, size, 1), np.float32)
    for photo in range(2):  # the third photo has no hints
        for y, x in rng.integers(0, size - patch, (points, 2)):
            ab[photo, y : y + patch, x : x + patch] = rng.uniform(-0.8, 0.8, 2)
            mask[photo, y : y + patch, x : x + patch] = 1.0
    layer = HintEvidence(4, spread=0.0)
    m = tf.nn.avg_pool2d(mask, 4, 4, "VALID")
    cell_ab = 110.0 * tf.nn.avg_pool2d(ab * mask, 4, 4, "VALID") / tf.maximum(m, 1e-6)
    hinted = int(tf.reduce_max(tf.math.count_nonzero(m > 0, axis=(1, 2, 3))))
    assert (hinted > HINT_CELLS) == (points == 40)
    every = layer._at_hints(m, cell_ab).numpy()
    logits = rng.normal(size=(3, size // 4, size // 4, 313)).astype(np.float32)
    out = layer(logits, ab, mask).numpy()
    np.testing.assert_allclose(out - logits, every, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(out[2], logits[2])
    if hinted <= HINT_CELLS:
        sparse = layer._at_hinted_cells(m, cell_ab).numpy()
        np.testing.assert_allclose(sparse, every, rtol=1e-5, atol=1e-4)


def test_hint_evidence_without_hints_or_spread_leaves_other_cells_alone() -> None:
    off, nearest = _one_hint_on_two_lightnesses(spread=0.0)
    assert off[8, 3].argmax() == nearest
    moved = np.abs(off).max(axis=-1) > 0
    assert moved.sum() == 1  # the 4 x 4 hint fills exactly one cell
    layer = HintEvidence(4, spread=3.0)
    logits = np.random.default_rng(0).normal(size=(1, 16, 16, 313)).astype(np.float32)
    zeros = np.zeros((1, 64, 64, 2), np.float32)
    out = layer(logits, zeros, zeros[..., :1], np.full((1, 64, 64, 1), 0.5, np.float32))
    np.testing.assert_array_equal(np.asarray(out), logits)


def test_hint_maps_place_each_hint_on_its_network_pixels() -> None:
    blue = (0, 0, 255)
    ab_blue = rgb_to_lab(np.array([blue], np.uint8))[0, 1:] / 110.0
    # photo 200 x 100 (h x w) onto a 64 x 32 network input: scale 0.32
    ab, mask = hint_maps([(50, 100, blue)], (200, 100), (64, 32))
    assert ab.shape == (64, 32, 2) and mask.shape == (64, 32, 1)
    assert mask.sum() == HINT_PATCH**2
    ys, xs = np.nonzero(mask[..., 0])
    assert (ys.min() + ys.max()) / 2 == 32 and (xs.min() + xs.max()) / 2 == 16
    np.testing.assert_allclose(ab[32, 16], ab_blue, atol=1e-6)
    assert np.all(ab[mask[..., 0] == 0] == 0)
    # two overlapping hints average where they meet; a corner hint is clipped
    red = (255, 0, 0)
    ab2, mask2 = hint_maps([(50, 100, blue), (53, 100, red)], (200, 100), (64, 32))
    ab_red = rgb_to_lab(np.array([red], np.uint8))[0, 1:] / 110.0
    np.testing.assert_allclose(ab2[32, 16], (ab_blue + ab_red) / 2, atol=1e-6)
    _, corner = hint_maps([(0, 0, red)], (200, 100), (64, 32))
    assert corner.sum() == (HINT_PATCH // 2 + 1) ** 2


@pytest.mark.slow
def test_colorize_with_hints_moves_the_colour_and_checks_points(
    hint_colorizer, photo
) -> None:
    auto = np.asarray(hint_colorizer.colorize(photo, SIZE))
    assert np.array_equal(
        auto, np.asarray(hint_colorizer.colorize(photo, SIZE, hints=[]))
    )
    hinted = np.asarray(
        hint_colorizer.colorize(photo, SIZE, hints=[(40, 60, (70, 100, 180))])
    )
    assert hinted.shape == auto.shape
    assert np.abs(hinted.astype(int) - auto).max() > 0
    # the lightness is the photo's in both
    lightness = rgb_to_lab(np.asarray(photo))[..., 0]
    kept = ~np.any((hinted == 0) | (hinted == 255), axis=-1)  # not gamut-clipped
    assert kept.mean() > 0.5
    assert np.abs(rgb_to_lab(hinted)[..., 0] - lightness)[kept].max() < 1.0
    with pytest.raises(HintError, match=r"hint 2 at \(96, 5\) is outside the 96x128"):
        hint_colorizer.colorize(
            photo, SIZE, hints=[(1, 1, (0, 0, 0)), (96, 5, (0, 0, 0))]
        )
    with pytest.raises(HintError, match="hint 1: colour"):
        hint_colorizer.colorize(photo, SIZE, hints=[(1, 1, (0, 0, 300))])
    with pytest.raises(HintError, match="not"):
        hint_colorizer.colorize(photo, SIZE, hints=[(1, 1)])


def test_models_without_hint_inputs_refuse_hints(random_colorizer, photo) -> None:
    assert not random_colorizer.takes_hints
    with pytest.raises(HintError, match="'default-v1' has no hint inputs"):
        random_colorizer.colorize(photo, SIZE, hints=[(1, 1, (255, 0, 0))])
    # no hints at all is automatic colorization, as before
    random_colorizer.colorize(photo, SIZE, hints=None)


@pytest.mark.slow
def test_suggest_gives_the_most_likely_colours_at_the_points_lightness(
    hint_colorizer, photo
) -> None:
    out = hint_colorizer.suggest(photo, 40, 60, k=6, size=SIZE)
    assert len(out) == 6
    probs = [p for _c, p in out]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-9
    colours = np.array([c for c, _p in out], np.uint8)
    assert len({tuple(c) for c in colours.tolist()}) > 1
    lightness = rgb_to_lab(np.asarray(photo)[60, 40])[0]
    # the same lightness, except where the bin's colour leaves the sRGB gamut
    assert np.median(np.abs(rgb_to_lab(colours)[:, 0] - lightness)) < 3.0
    hinted = hint_colorizer.suggest(
        photo, 40, 60, k=6, hints=[(40, 60, (0, 0, 255))], size=SIZE
    )
    assert hinted != out
    with pytest.raises(HintError, match="outside"):
        hint_colorizer.suggest(photo, 40, 128, size=SIZE)
    with pytest.raises(ValueError, match="k must be"):
        hint_colorizer.suggest(photo, 1, 1, k=0, size=SIZE)


@pytest.mark.slow
def test_automatic_colorization_leaves_out_the_zero_evidence(hint_colorizer, photo):
    model = hint_colorizer.model
    auto = automatic_model(model)
    assert "hint_evidence" not in {layer.name for layer in auto.layers}
    assert automatic_model(create_model("default-v1", pretrained=False)).name == (
        "default_v1"
    )
    rng = np.random.default_rng(0)
    l_norm = rng.uniform(0, 1, (1, SIZE, SIZE, 1)).astype(np.float32)
    zeros_ab = np.zeros((1, SIZE, SIZE, 2), np.float32)
    zeros_mask = np.zeros((1, SIZE, SIZE, 1), np.float32)
    full = model([l_norm, zeros_ab, zeros_mask], training=False).numpy()
    np.testing.assert_array_equal(
        auto([l_norm, zeros_ab, zeros_mask], training=False).numpy(), full
    )
    # the Colorizer takes that path without hints and the whole network with them
    plain = np.asarray(hint_colorizer.colorize(photo, size=SIZE))
    hinted = np.asarray(
        hint_colorizer.colorize(photo, size=SIZE, hints=[(40, 60, (30, 80, 220))])
    )
    keys = {key[2] for key in hint_colorizer._graphs}
    assert keys == {False, True}
    assert np.abs(plain.astype(int) - hinted.astype(int)).max() > 0
