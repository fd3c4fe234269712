"""Model registry and model families; importing this fills the registry."""

from core.models import cgan as _cgan  # noqa: F401  (registers "cgan")
from core.models import unet as _unet  # noqa: F401  (registers "default")
from core.models import vgg16 as _vgg16  # noqa: F401  (registers "vgg16-*")
from core.models.registry import (
    ModelSpec,
    UnknownModelError,
    create_model,
    get_spec,
    list_models,
    register_model,
)

__all__ = [
    "ModelSpec",
    "UnknownModelError",
    "create_model",
    "get_spec",
    "list_models",
    "register_model",
]
