"""Default limits of the web page; importing this loads neither Gradio nor Keras."""

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_QUEUE_SIZE",
    "DEFAULT_TIME_LIMIT_S",
]

DEFAULT_MAX_PIXELS = 40_000_000  # 40 MP: above any camera photo; ~0.5 GB while working
DEFAULT_MAX_BYTES = 50_000_000  # 50 MB per file; a 40 MP PNG is rarely larger
DEFAULT_CONCURRENCY = 1  # photos colorized at once: one already keeps 2 CPU cores busy
DEFAULT_QUEUE_SIZE = 32  # requests that may wait; more are asked to try again later
# seconds one request may take (checked between its steps, see demo.app.Deadline);
# a 40 MP photo takes well under 10 s on 2 cores, a full batch of 50 photos less
DEFAULT_TIME_LIMIT_S = 60.0
