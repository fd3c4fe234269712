"""The demo's handler functions, called directly with real files and real models."""

import os
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from core.colorizer import Colorizer
from demo.app import (
    colorize_files,
    colorize_photo,
    compare_models,
    is_color_photo,
    is_sampler,
    read_photo,
    result_dir,
    scores_markdown,
    visible_controls,
)
from tests.demo.conftest import MAX_BYTES, MAX_PIXELS, SIZE, mean_chroma

LIMITS = {"max_pixels": MAX_PIXELS, "max_bytes": MAX_BYTES}


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("text", "not an image"),
        ("empty", "empty"),
        ("truncated", "corrupt or truncated"),
        ("huge", "over the limit of 1,000,000"),
    ],
)
def test_read_photo_refuses_bad_files_in_one_line(photos, key, words):
    with pytest.raises(gr.Error) as info:
        read_photo(photos[key], **LIMITS)
    message = info.value.message
    assert words in message
    assert message.startswith(photos[key].name + ":")
    assert str(photos[key].parent) not in message  # no server folders shown
    assert "\n" not in message


def test_read_photo_refuses_files_over_the_byte_limit(photos):
    with pytest.raises(gr.Error, match=r"cat.png: .* MB is over the limit of 0.001 MB"):
        read_photo(photos["gray"], max_pixels=MAX_PIXELS, max_bytes=1_000)


def test_read_photo_asks_for_a_photo_when_there_is_none():
    with pytest.raises(gr.Error, match="Upload a photo first"):
        read_photo(None, **LIMITS)


def test_is_color_photo_tells_grey_from_colour(photos):
    gray, _ = read_photo(photos["gray"], **LIMITS)
    color, _ = read_photo(photos["color"], **LIMITS)
    assert not is_color_photo(gray)
    assert is_color_photo(color)


def test_colorize_photo_keeps_size_and_gives_colour(demo_colorizers, photos, tmp_path):
    result = colorize_photo(
        demo_colorizers["default-v1"],
        photos["gray"],
        size=SIZE,
        out_dir=tmp_path,
        **LIMITS,
    )
    assert result.color.size == result.gray.size == (223, 149)
    assert mean_chroma(result.gray) < 0.5
    assert mean_chroma(result.color) > 2.0
    assert result.png == tmp_path / "cat-colorized.png"
    with Image.open(result.png) as png:
        assert np.array_equal(np.asarray(png), np.asarray(result.color))
    gray_in = np.asarray(Image.open(photos["gray"]))
    assert np.abs(np.asarray(result.gray, np.int16) - gray_in).max() <= 1
    assert result.original is None and result.scores is None
    assert result.alternatives == []


def test_colorize_photo_scores_a_colour_upload(demo_colorizers, photos, tmp_path):
    result = colorize_photo(
        demo_colorizers["default-v1"],
        photos["color"],
        size=SIZE,
        out_dir=tmp_path,
        **LIMITS,
    )
    assert result.original is not None and result.scores is not None
    assert result.original.size == result.color.size == (200, 134)
    scores = result.scores
    assert 5.0 < scores.psnr < 100.0
    assert 0.0 < scores.auc <= 100.0
    assert scores.colorfulness > 0.0 and scores.colorfulness_original > 10.0
    table = scores_markdown(scores)
    assert f"{scores.psnr:.2f} dB" in table and f"{scores.auc:.1f} %" in table


def test_colorize_photo_keeps_alpha(demo_colorizers, photos, tmp_path):
    result = colorize_photo(
        demo_colorizers["default-v1"],
        photos["rgba"],
        size=SIZE,
        out_dir=tmp_path,
        **LIMITS,
    )
    alpha = np.asarray(Image.open(photos["rgba"]).getchannel("A"))
    assert result.color.mode == "RGBA" and result.gray.mode == "LA"
    assert np.array_equal(np.asarray(result.color.getchannel("A")), alpha)


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"size": 64}, "Render size must be between 128 and 1024"),
        ({"size": 4096}, "Render size"),
        ({"size": SIZE, "saturation": -1.0}, "Saturation"),
        ({"size": SIZE, "temperature": 2.0}, "Temperature"),
        ({"size": SIZE, "alternatives": 0}, "Alternatives"),
    ],
)
def test_colorize_photo_refuses_bad_settings(
    demo_colorizers, photos, tmp_path, settings, words
):
    with pytest.raises(gr.Error, match=words):
        colorize_photo(
            demo_colorizers["default-v1"],
            photos["gray"],
            out_dir=tmp_path,
            **settings,
            **LIMITS,
        )


def test_saturation_zero_gives_grey(demo_colorizers, photos, tmp_path):
    result = colorize_photo(
        demo_colorizers["default-v1"],
        photos["gray"],
        size=SIZE,
        saturation=0.0,
        out_dir=tmp_path,
        **LIMITS,
    )
    assert mean_chroma(result.color) < 0.5


def test_controls_follow_the_model_spec(demo_colorizers):
    assert visible_controls(demo_colorizers["default-v1"].spec) == (True, False)
    assert visible_controls(demo_colorizers["default-reg"].spec) == (False, False)


def test_sampling_models_give_alternatives(photos, tmp_path):
    """The shipped cGAN: each alternative is another seed, and they differ."""
    sampler = Colorizer.load("cgan")
    assert is_sampler(sampler.spec) and visible_controls(sampler.spec)[1]
    result = colorize_photo(
        sampler, photos["gray"], size=SIZE, alternatives=3, out_dir=tmp_path, **LIMITS
    )
    arrays = [np.asarray(im, dtype=np.float32) for im in result.alternatives]
    assert len(arrays) == 3 and result.color is result.alternatives[0]
    assert all(a.shape == arrays[0].shape for a in arrays)
    assert np.abs(arrays[0] - arrays[1]).mean() > 1.0
    assert np.abs(arrays[1] - arrays[2]).mean() > 1.0


def test_compare_models_shows_every_model(demo_colorizers, photos):
    shown = compare_models(demo_colorizers, photos["color"], size=SIZE, **LIMITS)
    captions = [caption for _, caption in shown]
    assert captions[0] == "Grey input" and captions[-1] == "Original"
    assert captions[1].startswith("default-v1 (") and captions[1].endswith(" dB)")
    assert captions[2].startswith("default-reg (")
    assert all(image.size == (200, 134) for image, _ in shown)


def test_colorize_files_zips_the_good_and_reports_the_bad(
    demo_colorizers, photos, tmp_path
):
    paths = [photos["gray"], photos["text"], photos["color"], photos["gray"]]
    progress = []
    result = colorize_files(
        demo_colorizers["default-v1"],
        paths,
        size=SIZE,
        out_dir=tmp_path,
        on_progress=lambda i, n: progress.append((i, n)),
        **LIMITS,
    )
    assert (result.done, result.failed) == (3, 1)
    assert progress == [(0, 4), (1, 4), (2, 4), (3, 4)]
    assert "3 of 4 photos colorized" in result.report
    assert "notes.png: not an image" in result.report
    with zipfile.ZipFile(result.zip) as archive:
        assert archive.namelist() == ["cat.png", "coffee.png", "cat-2.png"]
        with archive.open("cat.png") as member, Image.open(member) as png:
            assert png.size == (223, 149)
            assert mean_chroma(png) > 2.0
    assert [caption for _, caption in result.previews] == archive.namelist()


def test_colorize_files_says_when_nothing_worked(demo_colorizers, photos, tmp_path):
    with pytest.raises(gr.Error, match="None of the 2 files could be colorized"):
        colorize_files(
            demo_colorizers["default-v1"],
            [photos["text"], photos["empty"]],
            size=SIZE,
            out_dir=tmp_path,
            **LIMITS,
        )
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(gr.Error, match="Add some photos first"):
        colorize_files(demo_colorizers["default-v1"], [], size=SIZE, out_dir=tmp_path)


def test_result_dir_removes_results_older_than_an_hour(tmp_path):
    old = result_dir(tmp_path, now=0.0)
    os.utime(old, (1_000.0, 1_000.0))
    new = result_dir(tmp_path, now=1_000.0 + 3_601.0)
    assert not old.exists() and new.exists()
    assert Path(new).parent == tmp_path / "results"


def test_a_sepia_print_is_not_a_colour_photo():
    import skimage.data

    grey = skimage.data.camera()[::4, ::4].astype(np.float32) / 255.0
    sepia = grey[..., None] * np.array([1.0, 0.97, 0.9], np.float32)  # warm tone
    assert not is_color_photo(sepia)
    assert is_color_photo(skimage.data.coffee()[::4, ::4] / 255.0)


def test_the_demo_tells_colour_photos_by_core_colourcheck():
    from core import colourcheck
    from demo import app

    assert app.is_color_photo is colourcheck.is_color_photo
