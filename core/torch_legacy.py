"""Read PyTorch's legacy (pre-zip) ``.pth`` state dicts without torch.

``torch.save(..., _use_new_zipfile_serialization=False)`` writes five pickles in a row
(magic number, protocol version 1001, system-info dict, the object, the list of storage
keys), then for each storage key in that list's order an int64 little-endian element
count followed by the storage's raw little-endian data.

In the object pickle a tensor is a call to ``torch._utils._rebuild_tensor_v2(storage,
offset, size, stride, requires_grad, backward_hooks[, metadata])`` and a storage is the
persistent id ``('storage', <XxxStorage class>, key, location, numel, view_metadata)``.
The restricted unpickler below admits only those globals (plus ``OrderedDict``) and maps
them to plain local records, so no code from the file is ever run. See
docs/design.md 3.3.1.
"""

import dataclasses
import io
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

# torch storage class name -> little-endian numpy dtype of its elements. bfloat16 and
# the complex/quantized storages have no numpy equivalent we need, so they are refused.
_STORAGE_DTYPES: dict[str, str] = {
    "DoubleStorage": "<f8",
    "FloatStorage": "<f4",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "<i1",
    "ByteStorage": "<u1",
    "BoolStorage": "<?",
}


@dataclasses.dataclass(frozen=True, slots=True)
class StorageType:
    """Stand-in for a ``torch.XxxStorage`` class: its name and element dtype."""

    name: str
    dtype: np.dtype


@dataclasses.dataclass(frozen=True, slots=True)
class StorageRecord:
    """A storage referenced from the pickle by persistent id.

    ``key`` names the root storage written after the pickles, ``numel`` is the root's
    element count, and a view covers root elements
    ``[view_offset, view_offset + view_numel)`` (the whole root when not a view).
    """

    storage_type: StorageType
    key: str
    location: str
    numel: int
    view_offset: int
    view_numel: int


@dataclasses.dataclass(frozen=True, slots=True)
class TensorRecord:
    """Stand-in for a tensor: where its elements lie in a storage (all in elements)."""

    storage: StorageRecord
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


class _RefusedGlobalError(pickle.UnpicklingError):
    """A global outside the allow-list; never wrapped into ValueError."""


def _rebuild_tensor_record(
    storage: StorageRecord,
    storage_offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    requires_grad: bool = False,
    backward_hooks: object = None,
    metadata: object = None,
) -> TensorRecord:
    """Record the arguments of ``_rebuild_tensor_v2``; hooks are ignored."""
    layout = (storage_offset, *size, *stride)
    if not (
        isinstance(storage, StorageRecord)
        and isinstance(size, tuple)
        and isinstance(stride, tuple)
        and all(isinstance(n, int) for n in layout)
    ):
        raise pickle.UnpicklingError(
            f"malformed _rebuild_tensor_v2 call: {storage!r}, {storage_offset!r}, "
            f"{size!r}, {stride!r}"
        )
    return TensorRecord(storage, storage_offset, size, stride)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that admits only what a legacy torch state dict needs.

    Allowed globals: ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``
    (mapped to ``TensorRecord``) and ``torch.XxxStorage`` (mapped to ``StorageType``).
    Anything else raises ``pickle.UnpicklingError`` naming the refused global.
    """

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_record
        if module == "torch" and name in _STORAGE_DTYPES:
            return StorageType(name, np.dtype(_STORAGE_DTYPES[name]))
        raise _RefusedGlobalError(
            f"refused global {module}.{name}: only OrderedDict, _rebuild_tensor_v2 and "
            "torch storage types may appear in a legacy state dict"
        )

    def persistent_load(self, pid: Any) -> StorageRecord:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        _, storage_type, key, location, numel, view_metadata = pid
        if not (
            isinstance(storage_type, StorageType)
            and isinstance(key, str)
            and isinstance(numel, int)
            and numel >= 0
        ):
            raise pickle.UnpicklingError(f"malformed storage persistent id {pid!r}")
        view_offset, view_numel = 0, numel
        if view_metadata is not None:
            # (view key, offset into the root, view size), as torch's legacy loader.
            _, view_offset, view_numel = view_metadata
            if not (0 <= view_offset and view_offset + view_numel <= numel):
                raise pickle.UnpicklingError(f"storage view out of range in {pid!r}")
        return StorageRecord(
            storage_type, key, str(location), numel, view_offset, view_numel
        )


def _unpickle(buffer: io.BytesIO, path: Path, what: str) -> Any:
    """Read the next pickle from ``buffer``; malformed data becomes ValueError."""
    try:
        return RestrictedUnpickler(buffer).load()
    except _RefusedGlobalError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        AttributeError,
        KeyError,
        TypeError,
        ValueError,
    ) as err:
        raise ValueError(
            f"{path}: could not read the {what} pickle of a legacy PyTorch file "
            f"(truncated or corrupt?): {err}"
        ) from err


def _read_storages(
    data: bytes, start: int, keys: list[str], types: dict[str, StorageType], path: Path
) -> dict[str, np.ndarray]:
    """Read the raw storages that follow the pickles, in ``keys`` order."""
    storages: dict[str, np.ndarray] = {}
    pos = start
    for key in keys:
        if key not in types:
            raise ValueError(f"{path}: storage {key!r} is listed but never referenced")
        if pos + 8 > len(data):
            raise ValueError(f"{path}: file truncated before storage {key!r}")
        numel = int(np.frombuffer(data, dtype="<i8", count=1, offset=pos)[0])
        pos += 8
        dtype = types[key].dtype
        nbytes = numel * dtype.itemsize
        if numel < 0 or pos + nbytes > len(data):
            raise ValueError(
                f"{path}: file truncated in storage {key!r} "
                f"({numel} elements of {dtype.itemsize} bytes at byte {pos}, "
                f"file has {len(data)} bytes)"
            )
        storages[key] = np.frombuffer(data, dtype=dtype, count=numel, offset=pos)
        pos += nbytes
    return storages


def _tensor_to_array(
    record: TensorRecord, storages: dict[str, np.ndarray], name: str
) -> np.ndarray:
    """Copy a tensor's elements out of its storage into a native-order array."""
    storage = record.storage
    flat = storages[storage.key]
    if len(flat) != storage.numel:
        raise ValueError(
            f"tensor {name!r}: storage {storage.key!r} has {len(flat)} elements, "
            f"the pickle says {storage.numel}"
        )
    view = flat[storage.view_offset : storage.view_offset + storage.view_numel]
    size, stride, offset = record.size, record.stride, record.offset
    if len(size) != len(stride) or offset < 0 or min(stride, default=0) < 0:
        raise ValueError(
            f"tensor {name!r}: bad layout offset={offset} size={size} stride={stride}"
        )
    native = view.dtype.newbyteorder("=")
    if 0 in size:
        return np.zeros(size, dtype=native)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if last >= len(view):
        raise ValueError(
            f"tensor {name!r}: elements up to {last} fall outside its storage of "
            f"{len(view)} elements"
        )
    itemsize = view.dtype.itemsize
    strided = np.lib.stride_tricks.as_strided(
        view[offset:],
        shape=size,
        strides=tuple(s * itemsize for s in stride),
        writeable=False,
    )
    return np.array(strided, dtype=native, order="C", copy=True)


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Load a legacy-format PyTorch state dict as numpy arrays, without torch.

    path: a ``.pth`` written by ``torch.save`` in the legacy (non-zip) format whose
    object is a flat dict of tensors.
    Returns {key: array} in file order; each array is a fresh C-contiguous copy with the
    tensor's shape and dtype (float32 for FloatStorage, int64 for LongStorage, ...).
    Raises ValueError for a wrong magic number or protocol, a truncated or corrupt
    file, or a non-tensor entry; pickle.UnpicklingError for any global outside the
    allow-list (see RestrictedUnpickler).
    """
    path = Path(path)
    data = path.read_bytes()
    if data.startswith(b"PK\x03\x04"):
        raise ValueError(
            f"{path} is a zip-format PyTorch file (the default since torch 1.6); only "
            "the legacy format is supported"
        )
    buffer = io.BytesIO(data)
    magic = _unpickle(buffer, path, "magic number")
    if magic != MAGIC_NUMBER:
        raise ValueError(
            f"{path}: not a legacy PyTorch file (magic number {magic!r}, expected "
            f"{MAGIC_NUMBER:#x}); zip-format files are not supported"
        )
    protocol = _unpickle(buffer, path, "protocol version")
    if protocol != PROTOCOL_VERSION:
        raise ValueError(
            f"{path}: unsupported legacy protocol version {protocol!r}, "
            f"expected {PROTOCOL_VERSION}"
        )
    sys_info = _unpickle(buffer, path, "system info")
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise ValueError(f"{path}: only little-endian files are supported: {sys_info}")
    state = _unpickle(buffer, path, "state dict")
    keys = _unpickle(buffer, path, "storage key list")
    if not isinstance(state, dict):
        # A malformed file is a bad value for callers, who catch ValueError.
        raise ValueError(  # noqa: TRY004
            f"{path}: expected a state dict, got {type(state).__name__}; save "
            "model.state_dict(), not the model"
        )
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        raise ValueError(f"{path}: malformed storage key list {keys!r}")
    types: dict[str, StorageType] = {}
    for name, value in state.items():
        if not isinstance(value, TensorRecord):
            raise ValueError(  # noqa: TRY004 (a malformed file, as above)
                f"{path}: entry {name!r} is a {type(value).__name__}, expected a tensor"
            )
        storage_type = types.setdefault(value.storage.key, value.storage.storage_type)
        if storage_type != value.storage.storage_type:
            raise ValueError(
                f"{path}: storage {value.storage.key!r} is read as both "
                f"{storage_type.name} and {value.storage.storage_type.name}"
            )
    missing = set(types) - set(keys)
    if missing:
        raise ValueError(f"{path}: storages {sorted(missing)} are not in the file")
    storages = _read_storages(data, buffer.tell(), keys, types, path)
    return {
        str(name): _tensor_to_array(value, storages, str(name))
        for name, value in state.items()
    }
