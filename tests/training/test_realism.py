"""Stain rate, Fréchet distance and KID against known answers."""

import numpy as np
import pytest
import scipy.linalg
import skimage.data
from skimage.draw import disk

from core import metrics
from core.colorspace import lab_to_rgb, rgb_to_lab
from training.evaluate import gray_baseline
from training.realism import (
    frechet_distance,
    kernel_inception_distance,
    kid_subset_size,
    polynomial_kernel,
    unbiased_mmd2,
)

WHITE = (255, 255, 255)
RED = (220, 20, 20)  # Lab chroma about 100


def _disc_photo(
    background: tuple[int, int, int], disc: tuple[int, int, int], shape=(60, 80)
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (H, W, 3) photo of one colour with a disc of another; and the disc mask."""
    img = np.empty((*shape, 3), np.uint8)
    img[:] = background
    mask = np.zeros(shape, bool)
    mask[disk((30, 45), 17, shape=shape)] = True
    img[mask] = disc
    return img, mask


def _lab_patch(lightness: float, a: float, b: float = 0.0) -> np.ndarray:
    lab = np.zeros((8, 8, 3), np.float32)
    lab[...] = lightness, a, b
    return np.round(lab_to_rgb(lab) * 255).astype(np.uint8)


def test_grey_renderings_have_no_stains() -> None:
    for name in ("astronaut", "coffee", "chelsea"):
        photo = getattr(skimage.data, name)()[::4, ::4]
        assert metrics.stain_rate(photo, gray_baseline(photo)) == 0.0
        assert metrics.stain_rate(photo, photo.copy()) == 0.0  # right colours


def test_a_red_disc_on_white_stains_its_share_of_pixels() -> None:
    white, _ = _disc_photo(WHITE, WHITE)
    red_disc, mask = _disc_photo(WHITE, RED)
    share = mask.mean()
    assert share == pytest.approx(np.pi * 17**2 / (60 * 80), rel=0.03)
    # colorized red where the photo is white: the disc is a confident false colour
    assert metrics.stain_rate(white, red_disc) == pytest.approx(share)
    # the reverse, white where the photo is red: missing colour, no stain
    assert metrics.stain_rate(red_disc, white) == 0.0
    # a red photo rendered with a white disc: all but the disc is stained on white
    red, _ = _disc_photo(RED, WHITE)
    assert metrics.stain_rate(white, red) == pytest.approx(1.0 - share)


def test_stain_needs_both_chroma_and_error_above_their_thresholds() -> None:
    gt = _lab_patch(60.0, 0.0)
    chroma = lambda img: float(np.hypot(*rgb_to_lab(img)[0, 0, 1:]))  # noqa: E731
    faint = _lab_patch(60.0, 0.0, 18.0)  # chroma < 20, error < 30
    assert chroma(faint) < 20 and metrics.stain_rate(gt, faint) == 0.0
    mild = _lab_patch(60.0, 0.0, 25.0)  # chroma > 20 but error < 30
    assert 20 < chroma(mild) < 30 and metrics.stain_rate(gt, mild) == 0.0
    strong = _lab_patch(60.0, 0.0, 35.0)  # both above
    assert chroma(strong) > 30 and metrics.stain_rate(gt, strong) == 1.0
    # a colourful truth rendered in another colour of the same chroma is stained too
    blue = _lab_patch(60.0, 0.0, -35.0)
    assert metrics.stain_rate(strong, blue) == 1.0
    assert metrics.stain_rate(strong, strong) == 0.0


def _closed_form_fd(mu1, cov1, mu2, cov2) -> float:
    covmean = scipy.linalg.sqrtm(cov1 @ cov2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(cov1 + cov2 - 2 * covmean))


def test_identical_sets_have_zero_fd_and_kid() -> None:
    rng = np.random.default_rng(0)
    for n in (40, 300):  # fewer and more photos than features
        x = rng.uniform(0.0, 3.0, (n, 64))
        assert frechet_distance(x, x.copy()) == pytest.approx(0.0, abs=1e-8)
        kid, std = kernel_inception_distance(x, x.copy(), paired=True)
        assert kid == pytest.approx(0.0, abs=1e-12) and std < 1e-12
        # unpaired, the usual estimator draws both subsets independently from the
        # same photos; a photo drawn in both adds k(x_i, x_i) to the cross term, which
        # biases it by 2 (mean_{i != j} k - mean_{i, j} k), negative, O(1 / n)
        kernel = polynomial_kernel(x, x)
        off = (kernel.sum() - np.trace(kernel)) / (n * (n - 1))
        bias = 2 * (off - kernel.mean())
        unpaired, _ = kernel_inception_distance(x, x.copy())
        assert unpaired == pytest.approx(bias, rel=0.1)
        far, _ = kernel_inception_distance(x, x + 0.5, paired=True)
        assert abs(bias) < 0.1 * far


def test_fd_matches_scipy_sqrtm_on_sample_covariances() -> None:
    rng = np.random.default_rng(1)
    for n in (50, 400):  # the data route (n < d) and the covariance route (n > d)
        x = rng.normal(0.0, 1.0, (n, 64))
        y = rng.normal(0.3, 1.5, (n, 64))
        expected = _closed_form_fd(
            x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)
        )
        assert frechet_distance(x, y) == pytest.approx(expected, rel=1e-6)


def test_fd_of_two_gaussians_approaches_its_closed_form() -> None:
    rng = np.random.default_rng(2)
    d = 6
    mu1, mu2 = np.zeros(d), rng.normal(0.0, 1.0, d)
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    cov1, cov2 = a @ a.T / d + 0.1 * np.eye(d), b @ b.T / d + 0.1 * np.eye(d)
    expected = _closed_form_fd(mu1, cov1, mu2, cov2)
    x = rng.multivariate_normal(mu1, cov1, 40_000)
    y = rng.multivariate_normal(mu2, cov2, 40_000)
    assert frechet_distance(x, y) == pytest.approx(expected, rel=0.03)
    # diagonal covariances: |mu1 - mu2|^2 + sum (s1 + s2 - 2 sqrt(s1 s2))
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    x = rng.normal(0.0, np.sqrt(s1), (40_000, 3))
    y = rng.normal(1.0, np.sqrt(s2), (40_000, 3))
    diag = 3.0 + float((s1 + s2 - 2 * np.sqrt(s1 * s2)).sum())  # 3 + 4 + 1 + 0
    assert diag == 8.0
    assert frechet_distance(x, y) == pytest.approx(diag, rel=0.03)


def test_unbiased_mmd2_is_the_u_statistic() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(7, 5)), rng.normal(0.5, 1.0, size=(7, 5))

    def k(u, v):
        return (u @ v / 5 + 1.0) ** 3

    n = len(x)
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    xx = np.mean([k(x[i], x[j]) for i, j in pairs])
    yy = np.mean([k(y[i], y[j]) for i, j in pairs])
    xy_all = np.mean([k(x[i], y[j]) for i in range(n) for j in range(n)])
    xy_off = np.mean([k(x[i], y[j]) for i, j in pairs])
    assert unbiased_mmd2(x, y) == pytest.approx(xx + yy - 2 * xy_all)
    assert unbiased_mmd2(x, y, paired=True) == pytest.approx(xx + yy - 2 * xy_off)
    assert polynomial_kernel(x, y)[2, 3] == pytest.approx(k(x[2], y[3]))


@pytest.mark.slow
def test_kid_of_two_gaussians_approaches_its_closed_form() -> None:
    # d = 1: k(x, y) = (xy + 1)^3 has the features (x^3, sqrt3 x^2, sqrt3 x, 1), so
    # MMD^2 = (E x^3 - E y^3)^2 + 3 (E x^2 - E y^2)^2 + 3 (E x - E y)^2; for N(0, 1)
    # against N(m, 1): (m^3 + 3m)^2 + 3 m^4 + 3 m^2
    rng = np.random.default_rng(4)
    m = 0.5
    expected = (m**3 + 3 * m) ** 2 + 3 * m**4 + 3 * m**2
    x = rng.normal(0.0, 1.0, (20_000, 1))
    y = rng.normal(m, 1.0, (20_000, 1))
    kid, std = kernel_inception_distance(x, y, subset_size=1000, subsets=40)
    assert kid == pytest.approx(expected, rel=0.1)
    assert 0.0 < std < kid
    paired, _ = kernel_inception_distance(
        x, y, paired=True, subset_size=1000, subsets=40
    )
    assert paired == pytest.approx(expected, rel=0.1)  # independent pairs: the same


def test_kid_subsets_are_reproducible_and_sized_for_small_sets() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.uniform(0, 2, (250, 32)), rng.uniform(0, 2.2, (250, 32))
    a = kernel_inception_distance(x, y, paired=True, seed=7)
    assert a == kernel_inception_distance(x, y, paired=True, seed=7)
    assert a != kernel_inception_distance(x, y, paired=True, seed=8)
    assert a[0] > 0 and a[1] > 0  # subsets of 100 from 250 differ
    assert [kid_subset_size(n) for n in (2, 3, 20, 250, 5000)] == [2, 2, 10, 100, 100]
    with pytest.raises(ValueError, match="as many rows"):
        kernel_inception_distance(x, y[:10], paired=True)
    with pytest.raises(ValueError, match="one width"):
        frechet_distance(x, y[:, :5])
