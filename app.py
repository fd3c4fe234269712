"""Start the colorization web app: `python app.py` then open http://127.0.0.1:7860."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on")
    parser.add_argument("--model", default="default", help="registered model name")
    args = parser.parse_args(argv)
    from demo import build_demo

    build_demo(args.model).queue(default_concurrency_limit=2, max_size=32).launch(
        server_name=args.host, server_port=args.port, share=False
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
