"""Default limits of the web page; importing this loads neither Gradio nor Keras."""

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_QUEUE_SIZE",
]

DEFAULT_MAX_PIXELS = 40_000_000  # 40 MP: above any camera photo; ~0.5 GB while working
DEFAULT_MAX_BYTES = 50_000_000  # 50 MB per file; a 40 MP PNG is rarely larger
DEFAULT_CONCURRENCY = 1  # photos colorized at once: one already keeps 2 CPU cores busy
DEFAULT_QUEUE_SIZE = 32  # requests that may wait; more are asked to try again later
