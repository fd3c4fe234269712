"""Load test of the survey: simulated participants taking a study at the same time.

    python -m benchmarks.survey_load [--participants 50] [--db URL] [--url URL]
        [--per-model 5] [--second-tab 0.1] [--timeout-s 300]

Without --url it starts the survey's own server (`python -m survey.server`) on a free
loopback port, on --db (default: a SQLite file in a temporary folder); with --url it
drives an app already running on this machine, which must use the same --db. It
creates a fresh study of synthetic photos (2 models, --per-model test pairs each, one
practice pair, one attention check), then runs one thread per participant. Each one
does over HTTP what the page does in a browser: opens the study's link, consents and
answers every pair at random. For a share (--second-tab) of the pairs, the
participant's link is open in a second tab too and both tabs answer the same pair at
the same moment, with opposite choices: exactly one answer may be stored. Everything
stops at --timeout-s.

Then it checks in the database that every answer the page acknowledged is stored
exactly once, with its choice, and nothing else; and prints votes per second and
latency percentiles of real HTTP round trips (the client runs on the same CPUs).

Exit status: 0 every check passed; 1 a check failed; 2 bad usage or no server.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.cli import run_main
from core.config import add_dataclass_args, dataclass_from_args
from core.errors import InvalidInputError
from survey import (
    CreateConfig,
    Participant,
    Study,
    Trial,
    build_study,
    create_engine,
    init_db,
)

log = logging.getLogger(__name__)

MODELS = ("model-a", "model-b")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
HTTP_TIMEOUT_S = 60.0  # one request; the whole run is bounded by --timeout-s
SERVER_START_S = 120.0  # to import Gradio and start listening on a busy machine
ALREADY_ANSWERED = "already answered"  # the page's note on a refused second answer


@dataclass(frozen=True)
class LoadConfig:
    participants: int = field(
        default=50, metadata={"help": "simulated participants, all at once"}
    )
    db: str = field(
        default="",
        metadata={"help": "database URL (default: SQLite in a temporary folder)"},
    )
    url: str = field(
        default="",
        metadata={
            "help": "address of a running app on this machine using --db (default: "
            "start python -m survey.server)"
        },
    )
    per_model: int = field(
        default=5, metadata={"help": "test pairs per model for each participant"}
    )
    size: int = field(default=256, metadata={"help": "longer side of the photos"})
    second_tab: float = field(
        default=0.1,
        metadata={"help": "share of pairs answered from two tabs at the same moment"},
    )
    timeout_s: float = field(
        default=300.0, metadata={"help": "stop the participants after this long"}
    )
    seed: int = field(default=0, metadata={"help": "seeds photos and answers"})


@dataclass
class Simulated:
    """What one simulated participant did and what the page acknowledged."""

    session: str  # the browser tab's session, as Gradio's page sends it
    token: str = ""
    finished: bool = False
    error: str = ""
    # (position in the plan, choice) of every answer the page acknowledged
    votes: list[tuple[int, str]] = field(default_factory=list)
    races: int = 0  # pairs answered from two tabs at once
    refused: int = 0  # answers the page refused as already answered
    latencies: dict[str, list[float]] = field(default_factory=dict)


class _Refused(Exception):
    """The app failed us: an HTTP error status, an unexpected page, or no server."""


@dataclass(frozen=True)
class _Shown:
    """The page after an event: its step, the pair's number, all its text, the link."""

    step: str
    number: int
    text: str
    link: str


def _photos(n: int, size: int, rng: np.random.Generator) -> dict[str, Any]:
    """n smooth, colourful synthetic photos (size x 3/4 size), keyed like files."""
    photos = {}
    for i in range(n):
        coarse = rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize(
            (size, size * 3 // 4), Image.Resampling.BICUBIC
        )
        photos[f"load/photo-{i:03d}.png"] = (f"photo-{i:03d}", image)
    return photos


def _washed_out(_stem: str, real: Image.Image) -> Image.Image:
    """A stand-in colorization: the photo with half its colour drained."""
    return Image.blend(real, real.convert("L").convert("RGB"), 0.5)


def create_load_study(db_url: str, cfg: LoadConfig, name: str) -> int:
    """Store a new study for the run; returns the number of pairs per participant."""
    study = CreateConfig(
        name=name,
        photos="load",
        model=MODELS,
        per_model=cfg.per_model,
        attention_checks=1,
        practice_trials=1,
        display_ms=1000,
        size=cfg.size,
        seed=cfg.seed,
    )
    rng = np.random.default_rng(cfg.seed)
    photos = _photos(2 + cfg.per_model * len(MODELS), cfg.size, rng)
    engine = create_engine(db_url)
    try:
        init_db(engine)
        with Session(engine) as session, session.begin():
            fakes = dict.fromkeys(MODELS, _washed_out)
            summary = build_study(session, study, photos, fakes)
    finally:
        engine.dispose()
    return summary.trials_per_participant


def _read(outputs: list[Any]) -> _Shown:
    """The visible step of the page from an event's outputs (HTML strings, updates)."""
    text = " ".join(
        o if isinstance(o, str) else str(o.get("value", ""))
        for o in outputs
        if isinstance(o, str | dict)
    )
    steps = re.findall(r'data-step="(\w+)"', text)
    number = re.search(r'data-number="(\d+)"', text)
    links = [o for o in outputs if isinstance(o, str) and o.startswith("?")]
    return _Shown(
        step=steps[0] if len(steps) == 1 else "",
        number=int(number.group(1)) if number else 0,
        text=text,
        link=links[-1] if links else "",
    )


def _call(
    client: httpx.Client,
    sim: Simulated,
    session: str,
    event: str,
    data: list[Any],
    params: dict[str, str] | None = None,
) -> _Shown:
    """One event of the page, sent as the browser sends it; records its latency."""
    start = time.perf_counter()
    response = client.post(
        f"/gradio_api/run/{event}",
        params=params,
        json={"data": data, "session_hash": session},
    )
    sim.latencies.setdefault(event, []).append(time.perf_counter() - start)
    if response.status_code != 200:
        raise _Refused(f"{event}: HTTP {response.status_code} {response.text[:200]}")
    return _read(response.json()["data"])


def _at_once(*calls: Callable[[], _Shown]) -> list[_Shown | Exception]:
    """Start the calls at the same moment, one thread each; their results or errors."""
    results: list[_Shown | Exception] = [_Refused("not run")] * len(calls)
    gate = threading.Barrier(len(calls))

    def run(i: int) -> None:
        gate.wait()
        try:
            results[i] = calls[i]()
        except (_Refused, httpx.HTTPError) as err:
            results[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _answer(client: httpx.Client, sim: Simulated, page: _Shown, side: str) -> _Shown:
    """Answer the pair on the page; returns the next page."""
    shown = _call(client, sim, sim.session, f"survey_{side}", [None])
    if ALREADY_ANSWERED in shown.text:
        sim.refused += 1
    else:
        sim.votes.append((page.number - 1, side))
    return shown


def _race(
    client: httpx.Client, sim: Simulated, study: str, page: _Shown, side: str
) -> _Shown:
    """The pair on the page answered from this tab and from a second tab at once,
    with opposite choices; returns this tab's next page."""
    other_side = "right" if side == "left" else "left"
    tab = secrets.token_hex(8)
    with httpx.Client(base_url=client.base_url, timeout=HTTP_TIMEOUT_S) as other:
        params = {"study": study, "p": sim.token}
        second = _call(other, sim, tab, "survey_open", [], params)
        if second.number != page.number:
            raise _Refused(f"second tab shows pair {second.number}, not {page.number}")
        results = _at_once(
            lambda: _call(client, sim, sim.session, f"survey_{side}", [None]),
            lambda: _call(other, sim, tab, f"survey_{other_side}", [None]),
        )
    sim.races += 1
    for result, choice in zip(results, (side, other_side), strict=True):
        if isinstance(result, Exception):
            raise result
        if ALREADY_ANSWERED in result.text:
            sim.refused += 1
        else:
            sim.votes.append((page.number - 1, choice))
    mine = results[0]
    assert isinstance(mine, _Shown)  # an error was raised above
    return mine


def simulate(
    base: str, study: str, index: int, cfg: LoadConfig, deadline: float
) -> Simulated:
    """One participant, from the study's link to their score (or the deadline)."""
    sim = Simulated(session=secrets.token_hex(8))
    rng = np.random.default_rng([cfg.seed, index])
    try:
        with httpx.Client(base_url=base, timeout=HTTP_TIMEOUT_S) as client:
            page = _call(client, sim, sim.session, "survey_open", [], {"study": study})
            if page.step != "intro":
                raise _Refused(f"the study's link opened {page.step!r}, not intro")
            page = _call(client, sim, sim.session, "survey_start", [None, True])
            sim.token = urllib.parse.parse_qs(page.link.lstrip("?"))["p"][0]
            while page.step == "trial":
                if time.monotonic() > deadline:
                    sim.error = "stopped at --timeout-s"
                    return sim
                side = "left" if rng.random() < 0.5 else "right"
                if rng.random() < cfg.second_tab:
                    page = _race(client, sim, study, page, side)
                else:
                    page = _answer(client, sim, page, side)
            sim.finished = page.step == "done"
            if not sim.finished:
                sim.error = f"the page ended on {page.step!r}"
    except (_Refused, httpx.HTTPError, KeyError) as err:
        sim.error = str(err) or type(err).__name__
    return sim


def check_votes(db_url: str, study: str, sims: list[Simulated]) -> list[str]:
    """Problems found comparing the acknowledged answers with the database's."""
    engine = create_engine(db_url, must_exist=True)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(Participant.token, Trial.position, Trial.choice)
                .join(Participant, Participant.id == Trial.participant_id)
                .join(Study, Study.id == Trial.study_id)
                .where(Study.name == study, Trial.choice.is_not(None))
            ).all()
    finally:
        engine.dispose()
    stored = {(token, position): choice for token, position, choice in rows}
    acknowledged: dict[tuple[str, int], str] = {}
    problems = []
    for sim in sims:
        for position, choice in sim.votes:
            key = (sim.token, position)
            if key in acknowledged:
                problems.append(f"pair {position} of a participant acknowledged twice")
            acknowledged[key] = choice
    for key, choice in acknowledged.items():
        if key not in stored:
            problems.append(f"acknowledged answer not stored: pair {key[1]}")
        elif stored[key] != choice:
            problems.append(
                f"pair {key[1]} stored {stored[key]!r}, acknowledged {choice!r}"
            )
    extra = len(set(stored) - set(acknowledged))
    if extra:
        problems.append(f"{extra} stored answers were never acknowledged")
    return problems


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url: str, server: subprocess.Popen | None, log_path: Path | None):
    """Poll the page's config until the server answers (or give up)."""
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            tail = log_path.read_text()[-2000:] if log_path else ""
            raise _Refused(f"the survey server exited ({server.returncode}): {tail}")
        try:
            if httpx.get(f"{url}/config", timeout=5.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise _Refused(f"no answer from {url} after {SERVER_START_S:.0f} s")


def _percentiles(seconds: list[float]) -> str:
    if not seconds:
        return "-"
    p50, p99 = np.percentile(np.asarray(seconds) * 1000.0, [50, 99])
    return f"p50 {p50:6.0f} ms   p99 {p99:6.0f} ms   (n = {len(seconds)})"


def run(cfg: LoadConfig, db_url: str, url: str) -> int:
    """Create the study, run the participants against `url`, check, print; exit code."""
    study = f"load-{secrets.token_hex(4)}"
    pairs = create_load_study(db_url, cfg, study)
    deadline = time.monotonic() + cfg.timeout_s
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=cfg.participants) as pool:
        futures = [
            pool.submit(simulate, url, study, i, cfg, deadline)
            for i in range(cfg.participants)
        ]
        sims = [future.result() for future in futures]
    wall = time.perf_counter() - start
    problems = check_votes(db_url, study, sims)
    votes = sum(len(sim.votes) for sim in sims)
    finished = sum(sim.finished for sim in sims)
    errors = sorted({sim.error for sim in sims if sim.error})
    answers = [
        t
        for sim in sims
        for event, times in sim.latencies.items()
        if event in ("survey_left", "survey_right")
        for t in times
    ]
    every = [t for sim in sims for times in sim.latencies.values() for t in times]
    print(f"study              {study} ({pairs} pairs per participant) on {url}")
    print(f"participants       {cfg.participants} started, {finished} finished")
    print(
        f"answers            {votes} acknowledged and stored exactly once"
        if not problems
        else f"answers            {votes} acknowledged; {len(problems)} problems"
    )
    print(
        f"second tabs        {sum(s.races for s in sims)} pairs answered from two "
        f"tabs at once; {sum(s.refused for s in sims)} answers refused as replays"
    )
    print(f"wall time          {wall:.1f} s")
    print(f"votes per second   {votes / wall:.1f} (acknowledged answers / wall time)")
    print(f"answer latency     {_percentiles(answers)}")
    print(f"all requests       {_percentiles(every)}")
    for problem in problems[:20]:
        print(f"problem: {problem}")
    for error in errors[:10]:
        print(f"participant error: {error}")
    ok = not problems and not errors and finished == cfg.participants
    return 0 if ok else 1


def _usage_error(cfg: LoadConfig) -> str | None:
    if cfg.participants < 1:
        return f"--participants must be at least 1, got {cfg.participants}"
    if cfg.per_model < 1:
        return f"--per-model must be at least 1, got {cfg.per_model}"
    if not 0.0 <= cfg.second_tab <= 1.0:
        return f"--second-tab must be between 0 and 1, got {cfg.second_tab}"
    if cfg.timeout_s <= 0:
        return f"--timeout-s must be positive, got {cfg.timeout_s}"
    if cfg.url:
        parsed = urllib.parse.urlparse(cfg.url)
        if parsed.scheme not in ("http", "https") or parsed.hostname not in LOOPBACK:
            return f"--url must be an app on this machine (127.0.0.1), got {cfg.url}"
        if not cfg.db:
            return "--url needs the --db that app uses, to create the study and check"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.survey_load",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dataclass_args(parser, LoadConfig)
    return run_main(
        parser,
        argv,
        _run,
        level=logging.WARNING,
        force_logging=True,
        errors=(_Refused,),
    )


def _run(args: argparse.Namespace) -> int:
    cfg = dataclass_from_args(LoadConfig, args)
    problem = _usage_error(cfg)
    if problem is not None:
        raise InvalidInputError(problem)
    with tempfile.TemporaryDirectory(prefix="survey-load-") as tmp:
        db_url = cfg.db or f"sqlite:///{Path(tmp) / 'survey.db'}"
        if cfg.url:
            url, server, log_path = cfg.url.rstrip("/"), None, None
        else:
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            log_path = Path(tmp) / "server.log"
            with log_path.open("wb") as server_log:
                server = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "survey.server",
                        "--db",
                        db_url,
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                    ],
                    stdout=server_log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"},
                )
        try:
            _wait_until_up(url, server, log_path)
            return run(cfg, db_url, url)
        finally:
            if server is not None:
                server.terminate()
                try:
                    server.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()


if __name__ == "__main__":
    raise SystemExit(main())
