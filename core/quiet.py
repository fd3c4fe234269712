"""TensorFlow's start-up notes kept off the terminal.

TensorFlow 2.21 prints, on import, lines that no setting silences
(`TF_CPP_MIN_LOG_LEVEL` included): "All log messages before absl::InitializeLog() is
called are written to STDERR" and "oneDNN custom operations are on ...", each twice.
They are notes, not problems, and they bury the programs' own output.

`install()` (called by `core/__init__.py`, so before anything imports TensorFlow) adds
an import hook: the first `import tensorflow`, wherever it happens, runs with the
process's stderr (file descriptor 2) sent to a temporary file; afterwards every line
of it that is not one of the known notes is written back to stderr, so warnings and
errors still show. Importing `core` stays cheap: the hook loads nothing until
TensorFlow is imported.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from types import ModuleType

__all__ = ["NOTES", "filtered_stderr", "install"]

# substrings of the start-up lines dropped (informational notes of TensorFlow's C++)
NOTES = (
    "absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on",
    "cpu_feature_guard",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions",
)


@contextlib.contextmanager
def filtered_stderr(notes: Sequence[str] = NOTES) -> Iterator[None]:
    """Run the block with fd 2 captured; write back the lines not matching `notes`."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (e.g. a closed stderr)
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [
                line
                for line in tmp.read().decode(errors="replace").splitlines()
                if line.strip() and not any(n in line for n in notes)
            ]
            if kept:
                print("\n".join(kept), file=sys.stderr)


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` once and makes its loader run under `filtered_stderr`."""

    def find_spec(
        self,
        name: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once, and never while finding it again
        spec = importlib.util.find_spec(name)
        loader = getattr(spec, "loader", None)
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            with filtered_stderr():
                run(module)

        loader.exec_module = exec_module  # this loader instance serves this spec only
        return spec


def install() -> None:
    """Quiet the first import of TensorFlow (no effect once it is imported)."""
    if "tensorflow" in sys.modules:
        return
    if not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())
