"""Array type aliases used in signatures across the project."""

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
UInt8Array = npt.NDArray[np.uint8]
IntArray = npt.NDArray[np.int64]
