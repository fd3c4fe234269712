"""`python app.py`: its options, its one-line errors, and room for more tabs."""

import subprocess
import sys
from pathlib import Path

import gradio as gr
import pytest

from app import main, parse_weights
from demo import build_demo, launch_options

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    """Run in tmp_path: main() opens its default `sqlite:///survey.db` relative to the
    working directory (before it reports a missing weights file), and a test must
    not leave that file in the checkout."""
    monkeypatch.chdir(tmp_path)


def test_importing_the_app_loads_neither_gradio_nor_tensorflow():
    code = (
        "import sys, app, demo; "
        "print(sorted({'gradio', 'tensorflow', 'keras'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_help_lists_the_options(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--host", "--port", "--db", "--weights", "--max-pixels"):
        assert flag in out
    assert "SURVEY_ADMIN_TOKEN" in out and "127.0.0.1" in out and "7860" in out


def test_parse_weights_reads_name_equals_file():
    assert parse_weights(("default-v1=runs/a.h5",)) == {"default-v1": Path("runs/a.h5")}
    with pytest.raises(ValueError, match="NAME=FILE"):
        parse_weights(("default-v1",))


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--weights", "default-v1"], "--weights expects NAME=FILE"),
        (["--port", "70000"], "--port must be between 0 and 65535"),
        (["--max-bytes", "0"], "--max-bytes must be at least 1"),
        (
            ["--db", "sqlite://", "--weights", "nosuch=x.h5"],
            "unknown model 'nosuch'; known models: default",
        ),
        (["--weights", "default-v1=/nonexistent/best.weights.h5"], "not found"),
    ],
)
def test_bad_options_give_one_line_errors(capsys, argv, words):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err
    assert err.count("\n") == 1


def test_build_demo_takes_extra_tabs(demo_colorizers):
    def render_survey() -> None:
        gr.Markdown("Which photo is real?", elem_id="survey-question")

    demo = build_demo(demo_colorizers, extra_tabs=[("Survey", render_survey)])
    props = [c.get("props", {}) for c in demo.config["components"]]
    tabs = [p["label"] for p in props if p.get("name") == "tab"]
    assert tabs == [
        "Colorize a photo",
        "Colorize many photos",
        "Colorize a video",
        "Survey",
    ]
    assert any(p.get("elem_id") == "survey-question" for p in props)


def test_launch_options_are_offline_and_limit_uploads():
    options = launch_options(max_bytes=1234)
    assert options["share"] is False and options["max_file_size"] == 1234


@pytest.mark.slow
def test_app_keeps_users_files_in_a_private_folder_gone_after_sigterm(tmp_path, photos):
    """`python app.py` for real: uploads and results inside its 0700 folder, which
    SIGTERM removes (kill -9 and the sweep at start: tests/demo/test_tempdirs.py)."""
    import os
    import signal
    import socket
    import stat
    import time

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    env.update(TMPDIR=str(tmp_path), TF_CPP_MIN_LOG_LEVEL="2")
    url = f"http://127.0.0.1:{port}/"
    log = open(tmp_path.parent / f"{tmp_path.name}-app.log", "wb")  # noqa: SIM115
    db = f"sqlite:///{tmp_path.parent / (tmp_path.name + '-survey.db')}"
    app = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), "--db", db],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            assert app.poll() is None, "the app stopped while starting"
            assert time.monotonic() < deadline, "the app did not start"
            try:
                if httpx.get(url, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(1)
        (run,) = tmp_path.glob(f"colorize-app-{app.pid}-*")
        assert stat.S_IMODE(run.stat().st_mode) == 0o700
        with open(photos["gray"], "rb") as f:
            upload = httpx.post(f"{url}gradio_api/upload", files={"files": f}).json()
        assert Path(upload[0]).is_relative_to(run / "gradio")
        file = {"path": upload[0], "meta": {"_type": "gradio.FileData"}}
        data = [file, "default-v1", 128, 1, 0.38, 1]
        call = httpx.post(f"{url}gradio_api/call/colorize", json={"data": data})
        answer = httpx.get(
            f"{url}gradio_api/call/colorize/{call.json()['event_id']}", timeout=120
        ).text
        assert "event: complete" in answer and f"file={run}" in answer
        app.send_signal(signal.SIGTERM)
        assert app.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
        log.close()
    assert list(tmp_path.iterdir()) == []
