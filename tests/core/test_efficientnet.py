"""Tests for the torch-free legacy .pth reader and the EfficientNet-Lite port."""

import io
import os
import pickle
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pytest
import skimage.data
import skimage.transform
from keras import layers

from core.models.efficientnet_lite import (
    block_specs,
    build_efficientnet_lite,
    load_pretrained,
    preprocess,
    pretrained_weights_path,
    skip_tap_names,
)
from core.torch_legacy import MAGIC_NUMBER, PROTOCOL_VERSION, load_state_dict

# Stand-ins pickled by reference from this module; `_retarget` then rewrites their
# GLOBAL opcodes to the torch names a real legacy file contains.


class FloatStorage:
    """Pickled as the global torch.FloatStorage."""


class LongStorage:
    """Pickled as the global torch.LongStorage."""


def _rebuild_tensor_v2(*args: object) -> None:
    """Pickled as the global torch._utils._rebuild_tensor_v2; never called."""


class _Storage:
    def __init__(self, kind: type, key: str, data: np.ndarray) -> None:
        self.kind, self.key, self.data = kind, key, data
        self.view: tuple[str, int, int] | None = None


class _Tensor:
    def __init__(
        self, storage: _Storage, offset: int, size: tuple, stride: tuple
    ) -> None:
        self.args = (storage, offset, size, stride, False, OrderedDict())

    def __reduce__(self) -> tuple:
        return _rebuild_tensor_v2, self.args


class _Exploit:
    """Unpickling this calls os.system; the reader must refuse it."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple:
        return os.system, (self.command,)


class _LegacyPickler(pickle.Pickler):
    def persistent_id(self, obj: object) -> tuple | None:
        if isinstance(obj, _Storage):
            return ("storage", obj.kind, obj.key, "cpu", obj.data.size, obj.view)
        return None


def _retarget(data: bytes) -> bytes:
    """Point this module's stand-in globals at their torch names (protocol 2 only)."""
    renames = {
        "FloatStorage": b"torch",
        "LongStorage": b"torch",
        "_rebuild_tensor_v2": b"torch._utils",
    }
    for name, module in renames.items():
        here = f"c{__name__}\n{name}\n".encode()
        data = data.replace(here, b"c" + module + b"\n" + name.encode() + b"\n")
    return data


def _write_legacy(
    path: Path,
    state: dict,
    storages: list[_Storage],
    magic: int = MAGIC_NUMBER,
    protocol: int = PROTOCOL_VERSION,
) -> None:
    """Write `state` in torch's legacy format, as torch.save(..., zip=False) does."""
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {}}
    buffer = io.BytesIO()
    _LegacyPickler(buffer, protocol=2).dump(state)
    with path.open("wb") as f:
        pickle.dump(magic, f, protocol=2)
        pickle.dump(protocol, f, protocol=2)
        pickle.dump(sys_info, f, protocol=2)
        f.write(_retarget(buffer.getvalue()))
        pickle.dump([s.key for s in storages], f, protocol=2)
        for s in storages:
            f.write(np.array(s.data.size, dtype="<i8").tobytes())
            f.write(s.data.astype(s.data.dtype.newbyteorder("<")).tobytes())


def _small_state() -> tuple[OrderedDict, list[_Storage]]:
    floats = _Storage(FloatStorage, "140", np.arange(24, dtype=np.float32))
    longs = _Storage(LongStorage, "7", np.array([5, -3], dtype=np.int64))
    view = _Storage(FloatStorage, "140", floats.data)
    view.view = ("141", 6, 10)  # root elements 6..15
    state = OrderedDict(
        [
            ("z.weight", _Tensor(floats, 0, (2, 3, 4), (12, 4, 1))),
            ("a.transposed", _Tensor(floats, 2, (3, 2), (1, 4))),
            ("m.count", _Tensor(longs, 1, (), ())),
            ("v.view", _Tensor(view, 1, (2, 2), (5, 1))),
            ("e.empty", _Tensor(floats, 0, (0, 3), (3, 1))),
        ]
    )
    return state, [longs, floats]


def test_torch_reader_reads_hand_built_legacy_file(tmp_path: Path) -> None:
    path = tmp_path / "small.pth"
    _write_legacy(path, *_small_state())
    state = load_state_dict(path)
    assert list(state) == ["z.weight", "a.transposed", "m.count", "v.view", "e.empty"]
    root = np.arange(24, dtype=np.float32)
    np.testing.assert_array_equal(state["z.weight"], root.reshape(2, 3, 4))
    assert state["z.weight"].dtype == np.float32
    np.testing.assert_array_equal(state["a.transposed"], [[2, 6], [3, 7], [4, 8]])
    assert state["m.count"].shape == () and state["m.count"].dtype == np.int64
    assert state["m.count"] == -3
    np.testing.assert_array_equal(state["v.view"], [[7, 8], [12, 13]])
    assert state["e.empty"].shape == (0, 3)
    # Copies, not views into the file buffer.
    state["z.weight"][0, 0, 0] = 99.0
    assert state["a.transposed"].flags.writeable
    assert state["a.transposed"].flags.c_contiguous


def test_torch_reader_refuses_os_system(tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    state, storages = _small_state()
    state["z.weight"] = _Exploit(f"touch {sentinel}")
    _write_legacy(path, state, storages)
    with pytest.raises(pickle.UnpicklingError, match=r"(os|posix)\.system"):
        load_state_dict(path)
    assert not sentinel.exists()


@pytest.mark.parametrize(
    ("magic", "protocol", "match"),
    [(12345, PROTOCOL_VERSION, "magic number"), (MAGIC_NUMBER, 1000, "protocol")],
)
def test_torch_reader_rejects_wrong_header(
    tmp_path: Path, magic: int, protocol: int, match: str
) -> None:
    path = tmp_path / "bad.pth"
    _write_legacy(path, *_small_state(), magic=magic, protocol=protocol)
    with pytest.raises(ValueError, match=match):
        load_state_dict(path)


def test_torch_reader_rejects_zip_format(tmp_path: Path) -> None:
    path = tmp_path / "new.pth"
    path.write_bytes(b"PK\x03\x04" + bytes(60))
    with pytest.raises(ValueError, match="zip-format"):
        load_state_dict(path)


@pytest.mark.parametrize("cut", [1, 8, 100, 200])
def test_torch_reader_rejects_truncated_file(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "cut.pth"
    _write_legacy(path, *_small_state())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - cut])
    with pytest.raises(ValueError, match="truncated"):
        load_state_dict(path)


def _top1(model: keras.Model, rgb: np.ndarray, size: int) -> tuple[int, float]:
    """Top-1 ImageNet class and probability of the whole image resized (no crop)."""
    resized = skimage.transform.resize(
        rgb, (size, size), order=1, preserve_range=True, anti_aliasing=False
    )
    logits = model(preprocess(resized)[None], training=False)
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(logits))[0]
    return int(np.argmax(probs)), float(probs.max())


@pytest.fixture(scope="module")
def pretrained() -> Callable[[str], keras.Model]:
    """Variant -> its ImageNet classifier, built and converted once per module."""
    built: dict[str, keras.Model] = {}

    def get(variant: str) -> keras.Model:
        if variant not in built:
            built[variant] = build_efficientnet_lite(variant, include_top=True)
            load_pretrained(built[variant], variant)
        return built[variant]

    return get


@pytest.fixture(scope="module")
def lite0(pretrained) -> keras.Model:
    return pretrained("lite0")


def test_lite0_parameter_count(lite0: keras.Model) -> None:
    trainable = sum(int(np.prod(w.shape)) for w in lite0.trainable_weights)
    assert trainable == 4_652_008


def test_lite0_classifies_reference_images(lite0: keras.Model) -> None:
    cls, prob = _top1(lite0, skimage.data.chelsea(), 224)
    assert cls == 285  # Egyptian cat
    assert 0.70 <= prob <= 0.85
    cls, prob = _top1(lite0, skimage.data.coffee(), 224)
    assert cls == 967  # espresso
    assert prob > 0.8


@pytest.mark.slow
@pytest.mark.parametrize(
    ("variant", "side", "min_espresso"), [("lite1", 240, 0.5), ("lite2", 260, 0.8)]
)
def test_larger_variants_classify_reference_images(
    pretrained, variant: str, side: int, min_espresso: float
) -> None:
    model = pretrained(variant)
    cls, _ = _top1(model, skimage.data.chelsea(), side)
    assert cls == 285
    cls, prob = _top1(model, skimage.data.coffee(), side)
    assert cls == 967
    assert prob > min_espresso


@pytest.mark.slow
@pytest.mark.parametrize(
    ("variant", "project_shape"),
    [("lite1", (1, 1, 1152, 320)), ("lite2", (1, 1, 1248, 352))],
)
def test_larger_variants_match_weight_file(
    pretrained, variant: str, project_shape: tuple[int, ...]
) -> None:
    model = pretrained(variant)
    state = load_state_dict(pretrained_weights_path(variant))
    blocks = {int(k.split(".")[1]) for k in state if k.startswith("_blocks.")}
    assert len(blocks) == len(block_specs(variant)) == 21
    kernel = model.get_layer("blocks_20_project_conv").kernel
    assert kernel.shape == project_shape
    np.testing.assert_array_equal(
        kernel.numpy(), state["_blocks.20._project_conv.weight"].transpose(2, 3, 1, 0)
    )
    np.testing.assert_array_equal(
        model.get_layer("head_conv").get_weights()[0],
        state["_conv_head.weight"].transpose(2, 3, 1, 0),
    )


def test_skip_taps_have_documented_shapes() -> None:
    taps = skip_tap_names("lite0")
    assert taps == [
        "blocks_0_bn2",
        "blocks_2_add",
        "blocks_4_add",
        "blocks_10_add",
        "blocks_15_bn2",
    ]
    model = build_efficientnet_lite("lite0", input_shape=(224, 224, 3))
    shapes = [tuple(model.get_layer(n).output.shape[1:]) for n in taps]
    assert shapes == [
        (112, 112, 16),
        (56, 56, 24),
        (28, 28, 40),
        (14, 14, 112),
        (7, 7, 320),
    ]
    assert skip_tap_names("lite2") == [
        "blocks_0_bn2",
        "blocks_3_add",
        "blocks_6_add",
        "blocks_14_add",
        "blocks_20_bn2",
    ]


def test_load_pretrained_into_larger_model_keeps_decoder(lite0: keras.Model) -> None:
    base = build_efficientnet_lite("lite0", input_shape=(64, 64, 3))
    encoder = keras.Model(
        base.inputs, base.get_layer("blocks_4_add").output, name="encoder"
    )
    inputs = keras.Input((64, 64, 3))
    outputs = layers.Conv2D(2, 1, name="decoder_out")(encoder(inputs))
    model = keras.Model(inputs, outputs)
    decoder_before = [w.copy() for w in model.get_layer("decoder_out").get_weights()]
    load_pretrained(model, "lite0")
    for before, after in zip(
        decoder_before, model.get_layer("decoder_out").get_weights(), strict=True
    ):
        np.testing.assert_array_equal(before, after)
    for name in ("stem_conv", "blocks_4_bn2"):
        for got, want in zip(
            encoder.get_layer(name).get_weights(),
            lite0.get_layer(name).get_weights(),
            strict=True,
        ):
            np.testing.assert_array_equal(got, want)


def test_load_pretrained_rejects_wrong_variant() -> None:
    model = build_efficientnet_lite("lite0", input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="does not hold EfficientNet-lite0 weights"):
        load_pretrained(model, "lite0", path=pretrained_weights_path("lite2"))
    with pytest.raises(ValueError, match="lacks 'blocks_16_expand_conv'"):
        load_pretrained(model, "lite2")
