"""`--encoder-frozen-stride`: the encoder's first stages frozen in training."""

import numpy as np
import pytest
import skimage.data
import tensorflow as tf

from core.colorspace import rgb_to_lab
from core.errors import InvalidInputError
from core.models import create_model
from training.freeze import encoder_strides, freeze_encoder_to
from training.train_config import TrainConfig, resolve_config
from training.trainer import Trainer


def test_freezes_exactly_what_the_stride_output_depends_on() -> None:
    encoder = create_model("default-v1", pretrained=False).get_layer("encoder")
    assert encoder_strides(encoder) == [2, 4, 8, 16, 32]
    before = {layer.name: layer.trainable for layer in encoder.layers}
    assert freeze_encoder_to(encoder, 0) == []
    assert {layer.name: layer.trainable for layer in encoder.layers} == before
    frozen = freeze_encoder_to(encoder, 4)
    names = [layer.name for layer in encoder.layers]
    # a chain with residual adds: everything up to the stride-4 output, in order
    assert frozen == names[: names.index("blocks_2_add") + 1]
    assert frozen[1] == "stem_conv" and "blocks_1_dwconv" in frozen
    for layer in encoder.layers:
        # its batch norms were frozen already (inference mode, docs/design.md 4.3)
        assert layer.trainable == (before[layer.name] and layer.name not in frozen)
    assert not encoder.get_layer("blocks_2_dwconv").trainable_weights
    assert encoder.get_layer("blocks_3_expand_conv").trainable_weights
    with pytest.raises(InvalidInputError, match="one of \\[2, 4, 8, 16, 32\\]"):
        freeze_encoder_to(encoder, 3)
    assert len(freeze_encoder_to(encoder, 32)) == len(encoder.layers)


def test_config_fills_the_model_default() -> None:
    assert resolve_config(TrainConfig(model="default-v1")).encoder_frozen_stride == 0
    # the default trains from its stride-8 stages on (docs/design.md 3.2)
    assert resolve_config(TrainConfig(model="default")).encoder_frozen_stride == 4
    cfg = resolve_config(TrainConfig(model="default", encoder_frozen_stride=8))
    assert cfg.encoder_frozen_stride == 8


@pytest.mark.slow
def test_training_leaves_the_frozen_stages_and_trains_the_rest() -> None:
    cfg = TrainConfig(
        model="default-v1",
        pretrained=False,
        size=64,
        batch_size=2,
        lr=1e-3,
        warmup_steps=1,
        encoder_frozen_stride=4,
    )
    trainer = Trainer(cfg, total_steps=10, class_weights=np.ones(313))
    plain = Trainer(
        TrainConfig(model="default-v1", pretrained=False, size=64, batch_size=2),
        total_steps=10,
        class_weights=np.ones(313),
    )
    assert 0 < len(trainer.enc_vars) < len(plain.enc_vars)
    encoder = trainer.model.get_layer("encoder")
    stem = encoder.get_layer("stem_conv").kernel
    late = encoder.get_layer("blocks_3_expand_conv").kernel
    before = stem.numpy().copy(), late.numpy().copy()
    photos = np.stack(
        [skimage.data.astronaut()[:64, :64], skimage.data.coffee()[:64, :64]]
    )
    lab = rgb_to_lab(photos / 255.0).astype(np.float32)
    lightness = tf.constant(lab[..., :1])
    ab = tf.constant(lab[:, ::2, ::2, 1:])
    for _ in range(2):
        assert np.isfinite(float(trainer.train_step(lightness, ab)))
    np.testing.assert_array_equal(stem.numpy(), before[0])
    assert not np.allclose(late.numpy(), before[1])
