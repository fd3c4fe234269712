"""The 313 ab bins, soft encoding, rebalancing and decoding (docs/design.md 2)."""

import numpy as np
import pytest
import skimage.data
import tensorflow as tf
from PIL import Image
from scipy.spatial import cKDTree

from core.colorspace import rgb_to_lab
from core.quantize import (
    ANNEALED_T,
    NUM_BINS,
    bin_centers,
    candidate_table,
    decode_logits,
    gamut_occupied_bins,
    nearest_bin,
    rebalance_weights,
    smooth_prior,
    soft_encode_sparse_tf,
    soft_encode_tf,
)

# docs/design.md 2.1: for each a, the contiguous run (b from, b to, count).
ZHANG_RUNS = {
    -90: (50, 90, 5),
    -80: (20, 90, 8),
    -70: (0, 90, 10),
    -60: (-20, 90, 12),
    -50: (-30, 100, 14),
    -40: (-40, 100, 15),
    -30: (-50, 100, 16),
    -20: (-50, 100, 16),
    -10: (-60, 100, 17),
    0: (-70, 100, 18),
    10: (-80, 90, 18),
    20: (-80, 90, 18),
    30: (-90, 90, 19),
    40: (-100, 90, 20),
    50: (-100, 80, 19),
    60: (-110, 80, 20),
    70: (-110, 80, 20),
    80: (-110, 70, 19),
    90: (-110, 70, 19),
    100: (-90, 0, 10),
}


@pytest.fixture(scope="module")
def srgb_ab() -> np.ndarray:
    """ab of the sRGB colours on a grid of step 3 (0, 3, ..., 255): 86**3 colours."""
    v = np.arange(0, 256, 3, dtype=np.uint8)
    rgb = np.stack(np.meshgrid(v, v, v, indexing="ij"), axis=-1).reshape(-1, 3)
    return rgb_to_lab(rgb)[:, 1:].astype(np.float64)


def test_bin_centres_are_zhangs_313() -> None:
    c = bin_centers()
    assert c.shape == (313,) + (2,) and c.dtype == np.float32
    assert NUM_BINS == 313
    np.testing.assert_array_equal(c[120], [0, 0])
    assert c[:, 0].min() == -90 and c[:, 0].max() == 100
    assert c[:, 1].min() == -110 and c[:, 1].max() == 100
    assert np.all(c % 10 == 0)
    # ascending a, then ascending b (Zhang's pts_in_hull order)
    order = np.lexsort((c[:, 1], c[:, 0]))
    np.testing.assert_array_equal(order, np.arange(313))
    assert len({tuple(x) for x in c.tolist()}) == 313
    for a, (lo, hi, n) in ZHANG_RUNS.items():
        b = c[c[:, 0] == a, 1]
        np.testing.assert_array_equal(b, np.arange(lo, hi + 1, 10))
        assert len(b) == n


def test_bin_centers_returns_a_copy() -> None:
    c = bin_centers()
    c[:] = 0
    assert bin_centers()[0, 1] == 50


def test_occupied_cells_are_among_the_313(srgb_ab) -> None:
    cells = np.unique(np.round(srgb_ab / 10.0).astype(np.int64), axis=0) * 10
    centres = {tuple(x) for x in bin_centers().astype(np.int64).tolist()}
    assert {tuple(x) for x in cells.tolist()} <= centres
    assert len(cells) == 261  # docs/design.md 2.1 (every occupied cell)


@pytest.mark.slow
def test_gamut_occupied_bins_over_all_srgb() -> None:
    cells = gamut_occupied_bins()
    assert cells.shape == (261, 2) and cells.dtype == np.int64
    centres = {tuple(x) for x in bin_centers().astype(np.int64).tolist()}
    assert {tuple(x) for x in cells.tolist()} <= centres


def test_every_srgb_colour_is_near_a_centre(srgb_ab) -> None:
    dist, idx = cKDTree(bin_centers()).query(srgb_ab)
    assert dist.max() <= 7.1  # half the cell diagonal
    # nearest_bin agrees with the k-d tree (a subsample keeps this fast)
    sub = np.random.default_rng(0).choice(len(srgb_ab), 20_000, replace=False)
    np.testing.assert_array_equal(nearest_bin(srgb_ab[sub]), idx[sub])


def test_nearest_bin_round_trip_error_is_at_most_7_1(srgb_ab) -> None:
    """ab -> nearest bin -> its centre moves no sRGB colour by more than 7.1 units."""
    dist, _ = cKDTree(bin_centers()).query(srgb_ab)
    worst = np.argsort(dist)[-2000:]  # colours near cell corners, the hard cases
    sample = np.random.default_rng(1).choice(len(srgb_ab), 20_000, replace=False)
    ab = srgb_ab[np.concatenate([worst, sample])]
    err = np.linalg.norm(ab - bin_centers()[nearest_bin(ab)], axis=-1)
    assert err.max() <= 7.1
    assert err.max() > 7.0  # the corner cases were included (measured 7.06)


def test_every_centre_is_near_an_srgb_colour(srgb_ab) -> None:
    dist, _ = cKDTree(srgb_ab).query(bin_centers())
    assert dist.max() <= 15.0  # measured 14.86, at (40, 90)
    assert tuple(bin_centers()[dist.argmax()]) == (40, 90)


def test_nearest_bin_of_centres_is_identity() -> None:
    c = bin_centers()
    np.testing.assert_array_equal(nearest_bin(c), np.arange(313))
    np.testing.assert_array_equal(nearest_bin(c + 4.9), np.arange(313))
    shaped = nearest_bin(np.zeros((2, 3, 2)))
    assert shaped.shape == (2, 3) and shaped.dtype == np.int64
    assert np.all(shaped == 120)


def test_soft_encoding(rng) -> None:
    rgb = rng.integers(0, 256, (2, 7, 9, 3), dtype=np.uint8)
    ab = rgb_to_lab(rgb)[..., 1:]
    z = soft_encode_tf(tf.constant(ab)).numpy()
    assert z.shape == (2, 7, 9, 313)
    np.testing.assert_allclose(z.sum(-1), 1.0, atol=1e-5)
    assert np.all(z >= 0)
    assert np.all((z > 0).sum(-1) == 5)
    np.testing.assert_array_equal(z.argmax(-1), nearest_bin(ab))


def test_soft_encoding_matches_formula() -> None:
    ab = np.array([[[[13.3, -27.9]]]], np.float32)
    z = soft_encode_tf(ab).numpy()[0, 0, 0]
    d2 = ((bin_centers() - ab[0, 0, 0]) ** 2).sum(-1)
    nearest5 = np.argsort(d2)[:5]
    w = np.exp(-d2[nearest5] / (2 * 5.0**2))
    expected = np.zeros(313)
    expected[nearest5] = w / w.sum()
    np.testing.assert_allclose(z, expected, atol=1e-6)


@pytest.mark.slow
def test_soft_encoding_from_cell_candidates_is_the_brute_force_one(rng) -> None:
    # the nearest 5 among the candidates of each ab's cell are the nearest 5 of all
    # 313: random points, every point of the integer grid (ties, cell edges), and
    # points outside [-128, 128) (then all 313 are searched)
    grid = np.stack(np.meshgrid(*[np.arange(-128.0, 128.0)] * 2), -1).reshape(-1, 2)
    for ab in (
        rng.uniform(-128, 128, (10_000, 2)),
        grid,
        rng.uniform(-300, 300, (500, 2)),
    ):
        ab = ab.astype(np.float32)
        idx, w = soft_encode_sparse_tf(tf.constant(ab))
        got = np.zeros((len(ab), 313))
        np.put_along_axis(got, idx.numpy(), w.numpy(), axis=1)
        d2 = ((ab[:, None, :].astype(np.float64) - bin_centers()) ** 2).sum(-1)
        nearest = np.argsort(d2, axis=1, kind="stable")[:, :5]
        near_d2 = np.take_along_axis(d2, nearest, axis=1)
        weights = np.exp(-(near_d2 - near_d2[:, :1]) / (2 * 5.0**2))
        expected = np.zeros_like(got)
        np.put_along_axis(expected, nearest, weights / weights.sum(1, keepdims=True), 1)
        np.testing.assert_allclose(got, expected, atol=5e-5)
        np.testing.assert_array_equal(idx.numpy()[:, 0], nearest[:, 0])
    table, cells = candidate_table()
    assert cells == 128 and table.shape == (128 * 128, 12)


@pytest.mark.parametrize("ab", [(-100.0, -100.0), (0.0, 200.0)])
def test_soft_encoding_far_from_every_centre(ab) -> None:
    z = soft_encode_tf(np.array([[[ab]]], np.float32)).numpy()[0, 0, 0]
    assert np.all(np.isfinite(z))
    assert abs(z.sum() - 1.0) < 1e-5
    assert z.argmax() == nearest_bin(np.array(ab))


def test_decode_argmax_and_mean(rng) -> None:
    logits = rng.normal(0, 3, (4, 5, 313)).astype(np.float32)
    c = bin_centers()
    argmax = c[logits.argmax(-1)]
    np.testing.assert_array_equal(decode_logits(logits, 0.0), argmax)
    np.testing.assert_allclose(decode_logits(logits, 1e-4), argmax, atol=1e-3)
    p = np.exp(logits.astype(np.float64))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(decode_logits(logits, 1.0), p @ c, atol=1e-3)
    out = decode_logits(logits)
    assert out.shape == (4, 5, 2) and out.dtype == np.float32
    # the annealed mean is softmax(s / T) with T = 0.38
    q = np.exp((logits / ANNEALED_T).astype(np.float64))
    q /= q.sum(-1, keepdims=True)
    np.testing.assert_allclose(out, q @ c, atol=1e-3)


def test_decode_peaked_logits_gives_that_centre() -> None:
    c = bin_centers()
    for q in (0, 120, 200, 312):
        logits = np.full(313, -10.0, np.float32)
        logits[q] = 10.0
        for t in (0.0, ANNEALED_T, 1.0):
            np.testing.assert_allclose(decode_logits(logits, t), c[q], atol=1e-3)


def test_decode_uniform_logits_gives_centroid() -> None:
    ab = decode_logits(np.zeros((1, 313), np.float32), 1.0)
    np.testing.assert_allclose(ab[0], bin_centers().mean(0), atol=1e-3)


def test_decode_is_stable_for_huge_logits() -> None:
    logits = np.zeros(313, np.float32)
    logits[7] = 1e30
    assert np.all(np.isfinite(decode_logits(logits, ANNEALED_T)))


def test_rebalance_weights(rng) -> None:
    prior = smooth_prior(rng.integers(0, 1000, 313))
    w = rebalance_weights(prior)
    assert w.shape == (313,) and w.dtype == np.float64
    assert abs((prior * w).sum() - 1.0) < 1e-12
    assert np.all(w > 0)
    # rare colours get larger weights
    assert w[prior.argmin()] > w[prior.argmax()]
    np.testing.assert_allclose(rebalance_weights(np.full(313, 1 / 313)), 1.0)


@pytest.mark.parametrize("lam", [0.0, 0.25, 0.5, 1.0])
def test_rebalance_weights_have_expectation_one_on_a_photo(lam) -> None:
    rgb = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((96, 96)))
    q = nearest_bin(rgb_to_lab(rgb)[..., 1:])
    prior = smooth_prior(np.bincount(q.ravel(), minlength=313))
    w = rebalance_weights(prior, lam)
    assert abs((prior * w).sum() - 1.0) < 1e-12
    if lam == 1.0:  # all uniform: nothing to rebalance
        np.testing.assert_allclose(w, 1.0)
    else:  # the photo's commonest colour weighs least
        assert w.argmin() == prior.argmax()


def test_rebalance_weights_matches_formula() -> None:
    prior = smooth_prior(np.arange(313) + 1.0)
    w = 1.0 / (0.5 * prior + 0.5 / 313)
    w /= (prior * w).sum()
    np.testing.assert_allclose(rebalance_weights(prior), w, rtol=1e-12)


def test_rebalance_weights_ignores_empty_bins() -> None:
    prior = np.zeros(313)
    prior[:10] = 0.1
    w = rebalance_weights(prior)
    assert np.all(w[10:] == 0)
    np.testing.assert_allclose(w[:10], 1.0)
    assert abs((prior * w).sum() - 1.0) < 1e-12


def test_smooth_prior(rng) -> None:
    counts = rng.integers(0, 50, 313)
    p = smooth_prior(counts)
    assert p.shape == (313,) and p.dtype == np.float64
    assert abs(p.sum() - 1.0) < 1e-12 and np.all(p > 0)
    # smoothing a single bin spreads it to its neighbours, peaking at that bin
    one = np.zeros(313)
    one[120] = 5
    s = smooth_prior(one)
    assert s.argmax() == 120
    d = np.linalg.norm(bin_centers() - bin_centers()[120], axis=-1)
    assert abs(s[d == 10].sum() / s[120] - 4 * np.exp(-100 / 50)) < 1e-9


@pytest.mark.parametrize("counts", [np.zeros(313), np.ones(312), np.ones((313, 1))])
def test_smooth_prior_rejects_bad_counts(counts) -> None:
    with pytest.raises(ValueError, match="313"):
        smooth_prior(counts)
