"""Create a Turing-test study: real colour photos and their fakes, stored as pairs.

    python -m survey.create --name pilot --photos photos/ --model default \\
        [--model other ...] [--per-model 15] [--fakes DIR] [--db sqlite:///survey.db]

Photos are the image files under --photos (recursively, hidden ones skipped). Each is
loaded safely, checked to be a colour photo and scaled down so its longer side is at
most --size. A photo that cannot be used gets one `error: <path>: <reason>` line on
stderr and is skipped. Photos are drawn at random (seeded by --seed): --practice-trials
of them become practice pairs, --attention-checks become attention checks (the fake is
the photo made plainly grey), and the rest become test pairs, one per model.

Fakes come from `core.Colorizer` (the model's shipped weights), or ready-made from
--fakes DIR, matched by file stem: DIR/<model>/<stem>.* when that folder exists, else
DIR/<stem>.* when there is a single model; a model without its folder is colorized.
A fake is resized to its photo's size. Real and fake are re-encoded the same way
(uncompressed RGB PNG, no metadata: `survey.encoding`), so the two files of a pair have
the same length and differ only in their pixels, and are stored under opaque random ids:
nothing served tells which is real but the pixels. Each participant later sees
--per-model test pairs per model (every photo at most once), so the study needs that
many photos times the number of models.

Exit status: 0 created; 2 bad usage (unknown model, missing weights, a study of that
name already exists, too few usable photos).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.cli import run_main
from core.colourcheck import is_color_photo
from core.config import add_dataclass_args, dataclass_from_args
from core.imageio import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    ImageLoadError,
    images_in_folder,
    load_image,
)
from core.types import UInt8Array
from survey.db import DEFAULT_URL, command_errors, create_engine, init_db
from survey.encoding import encode_png
from survey.errors import InvalidInputError, StudyExistsError
from survey.models import STUDY_NAME_RE, Image, Pair, Study

if TYPE_CHECKING:
    from core.colorizer import Colorizer

__all__ = [
    "IMAGE_SUFFIXES",
    "CreateConfig",
    "FakeSource",
    "StudySummary",
    "build_study",
    "create_study",
    "fakes_from_colorizer",
    "fakes_from_folder",
    "find_photos",
    "load_photo",
    "main",
    "png_bytes",
]

log = logging.getLogger(__name__)

MIN_SIZE, MAX_SIZE = 32, 2048  # served longer side; MAX_SIZE as core.colorizer's
MAX_ASPECT_CHANGE = 0.02  # a fake whose aspect ratio differs more is not of that photo
ATTENTION_MODEL = "gray"  # model label of attention-check pairs

# (photo stem, real photo as served) -> fake; raises ImageLoadError when there is none
FakeSource = Callable[[str, PILImage.Image], PILImage.Image]


@dataclass(frozen=True)
class CreateConfig:
    name: str = field(
        metadata={"help": "study name: letters, digits, '.', '_', '-' (unique)"}
    )
    photos: str = field(metadata={"help": "folder of real colour photos"})
    model: tuple[str, ...] = field(
        metadata={"help": "model whose fakes are shown; repeat for several models"}
    )
    per_model: int = field(
        default=15,  # the student report's planned online survey (docs/design.md 6.1)
        metadata={"help": "test pairs per model that each participant sees"},
    )
    fakes: str = field(
        default="",
        metadata={"help": "folder of ready-made fakes, matched to photos by stem"},
    )
    attention_checks: int = field(
        default=3, metadata={"help": "pairs whose fake is plainly grey"}
    )
    practice_trials: int = field(
        default=2, metadata={"help": "practice pairs first, with feedback, not scored"}
    )
    display_ms: int = field(
        default=1000,  # Zhang et al. showed each pair for about one second
        metadata={"help": "how long a pair is shown, in ms (0 = until answered)"},
    )
    size: int = field(
        default=256,
        metadata={"help": "longer side of the shown images and of the network input"},
    )
    max_photos: int = field(
        default=0, metadata={"help": "use at most this many photos (0 = all)"}
    )
    seed: int = field(
        default=0, metadata={"help": "seeds the draw of photos and every plan"}
    )
    db: str = field(default=DEFAULT_URL, metadata={"help": "SQLAlchemy database URL"})


@dataclass(frozen=True)
class StudySummary:
    """What `create_study` stored."""

    name: str
    models: tuple[str, ...]
    test_photos: int
    attention_checks: int
    practice_trials: int
    trials_per_participant: int
    skipped: int  # photos left out, each reported on an `error:` line


def find_photos(folder: Path) -> list[Path]:
    """Image files under `folder` (recursively), sorted; hidden entries left out
    (`core.imageio.images_in_folder`, the project's one scanner and suffix list)."""
    return images_in_folder(folder)


def _to_uint8(source: Path | PILImage.Image) -> UInt8Array:
    rgb, alpha = load_image(source, DEFAULT_MAX_PIXELS)
    if alpha is not None:
        log.warning("%s: dropped the alpha channel", source)
    return np.round(rgb * 255.0).astype(np.uint8)


def load_photo(path: Path, size: int) -> PILImage.Image:
    """A real photo as it will be served: RGB, longer side at most `size`.

    Raises ImageLoadError (one line) for unreadable files and for photos that are
    not in colour (`core.colourcheck.is_color_photo`: grey, or toned like sepia).
    """
    rgb = _to_uint8(path)
    if not is_color_photo(rgb):
        raise ImageLoadError(
            f"{path}: not a colour photo (it looks grey or toned, like sepia)"
        )
    image = PILImage.fromarray(rgb, mode="RGB")
    scale = size / max(image.size)
    if scale < 1.0:
        w, h = image.size
        image = image.resize(
            (max(1, round(w * scale)), max(1, round(h * scale))),
            PILImage.Resampling.LANCZOS,
        )
    return image


def png_bytes(image: PILImage.Image) -> bytes:
    """The bytes stored and served for an image: uncompressed RGB PNG, no metadata,
    a length set by the size alone (`survey.encoding`); real and fake alike."""
    return encode_png(image)


def _match_size(
    source: Path | PILImage.Image, real: PILImage.Image, stem: str
) -> PILImage.Image:
    """The fake as RGB at the real photo's size; refuses another aspect ratio."""
    fake = PILImage.fromarray(_to_uint8(source), mode="RGB")
    if fake.size == real.size:
        return fake
    real_aspect = real.size[0] / real.size[1]
    fake_aspect = fake.size[0] / fake.size[1]
    if abs(fake_aspect / real_aspect - 1.0) > MAX_ASPECT_CHANGE:
        raise ImageLoadError(
            f"{stem}: fake is {fake.size[0]}x{fake.size[1]}, the photo "
            f"{real.size[0]}x{real.size[1]}: not the same photo"
        )
    return fake.resize(real.size, PILImage.Resampling.LANCZOS)


def fakes_from_folder(folder: Path) -> FakeSource:
    """Ready-made fakes `folder/<stem>.*` (hidden files and subfolders ignored)."""
    by_stem: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES:
            if path.stem in by_stem:
                log.warning(
                    "%s: two fakes named %s.*; using %s",
                    folder,
                    path.stem,
                    by_stem[path.stem].name,
                )
                continue
            by_stem[path.stem] = path

    def fake(stem: str, real: PILImage.Image) -> PILImage.Image:
        path = by_stem.get(stem)
        if path is None:
            raise ImageLoadError(f"{folder}: no fake named {stem}.*")
        return _match_size(path, real, stem)

    return fake


def fakes_from_colorizer(colorizer: Colorizer, size: int) -> FakeSource:
    """Fakes made by a `core.Colorizer` from each real photo's own lightness."""

    def fake(stem: str, real: PILImage.Image) -> PILImage.Image:
        return _match_size(colorizer.colorize(real, size=size), real, stem)

    return fake


def _gray(real: PILImage.Image) -> PILImage.Image:
    """The plainly grey fake of an attention check (ITU-R 601 luma, as Pillow's L)."""
    return real.convert("L").convert("RGB")


def _check_config(cfg: CreateConfig) -> None:
    problems = []
    if not STUDY_NAME_RE.fullmatch(cfg.name):
        problems.append(
            f"--name must be 1-64 letters, digits, '.', '_' or '-' (not first), "
            f"got {cfg.name!r}"
        )
    if not Path(cfg.photos).is_dir():
        problems.append(f"--photos {cfg.photos}: no such folder")
    if cfg.fakes and not Path(cfg.fakes).is_dir():
        problems.append(f"--fakes {cfg.fakes}: no such folder")
    if not cfg.model:
        problems.append("give at least one --model")
    for model in cfg.model:
        if not 1 <= len(model) <= 64 or model == ATTENTION_MODEL:
            problems.append(f"--model {model!r}: not a usable model name")
    if len(set(cfg.model)) != len(cfg.model):
        problems.append(f"--model lists a model twice: {' '.join(cfg.model)}")
    if cfg.per_model < 1:
        problems.append(f"--per-model must be at least 1, got {cfg.per_model}")
    for flag, value in (
        ("--attention-checks", cfg.attention_checks),
        ("--practice-trials", cfg.practice_trials),
        ("--display-ms", cfg.display_ms),
        ("--max-photos", cfg.max_photos),
        ("--seed", cfg.seed),
    ):
        if value < 0:
            problems.append(f"{flag} must be >= 0, got {value}")
    if not MIN_SIZE <= cfg.size <= MAX_SIZE:
        problems.append(
            f"--size must be between {MIN_SIZE} and {MAX_SIZE}, got {cfg.size}"
        )
    if problems:
        raise InvalidInputError("; ".join(problems))


def _fake_sources(cfg: CreateConfig) -> dict[str, FakeSource]:
    """A fake source per model: its --fakes folder, or its Colorizer."""
    sources: dict[str, FakeSource] = {}
    fakes = Path(cfg.fakes) if cfg.fakes else None
    for model in cfg.model:
        if fakes is not None and (fakes / model).is_dir():
            sources[model] = fakes_from_folder(fakes / model)
        elif fakes is not None and len(cfg.model) == 1:
            sources[model] = fakes_from_folder(fakes)
        else:
            sources[model] = fakes_from_colorizer(_load_colorizer(model), cfg.size)
    return sources


def _load_colorizer(model: str) -> Colorizer:
    # imported here: TensorFlow loads only when a model has to colorize
    from core import Colorizer
    from core.models import UnknownModelError
    from core.weights import MissingWeightsError, WeightsChecksumError

    try:
        return Colorizer.load(model)
    except (UnknownModelError, MissingWeightsError, WeightsChecksumError) as err:
        raise InvalidInputError(
            f"--model {model}: {err} (or give its fakes with --fakes DIR)"
        ) from err


def _check_name_free(session: Session, name: str) -> None:
    if session.scalar(select(Study.id).where(Study.name == name)) is not None:
        raise StudyExistsError(
            f"a study named {name!r} already exists in this database; choose another "
            "--name (studies are never overwritten)"
        )


def build_study(
    session: Session,
    cfg: CreateConfig,
    reals: Mapping[str, tuple[str, PILImage.Image]],
    fake_sources: Mapping[str, FakeSource],
) -> StudySummary:
    """Draw, make and store the pairs of a new study in the caller's transaction.

    reals: photo key (private; e.g. the path under --photos) -> (stem, real photo as
    served). fake_sources: model -> how to get its fake of a photo.
    Photos whose fake cannot be had are skipped with an `error:` log line.
    Raises StudyExistsError, or InvalidInputError when too few photos are usable.
    """
    _check_name_free(session, cfg.name)
    models = tuple(cfg.model)
    rng = np.random.default_rng(cfg.seed)
    keys = sorted(reals)
    keys = [keys[i] for i in rng.permutation(len(keys))]
    needed = cfg.per_model * len(models)
    reserved = cfg.practice_trials + cfg.attention_checks
    if len(keys) < reserved + needed:
        raise InvalidInputError(
            f"{len(keys)} usable colour photos, but {cfg.practice_trials} practice + "
            f"{cfg.attention_checks} attention + {cfg.per_model} per model x "
            f"{len(models)} models needs {reserved + needed}; add photos or lower "
            "--per-model"
        )
    practice_keys = keys[: cfg.practice_trials]
    attention_keys = keys[cfg.practice_trials : reserved]
    test_keys = keys[reserved:]

    study = Study(
        name=cfg.name,
        seed=cfg.seed,
        per_model=cfg.per_model,
        display_ms=cfg.display_ms,
        image_size=cfg.size,
    )
    session.add(study)
    session.flush()

    def store(image: PILImage.Image) -> str:
        row = Image(
            study_id=study.id,
            width=image.size[0],
            height=image.size[1],
            data=png_bytes(image),
        )
        session.add(row)
        session.flush()
        return row.id

    def fakes_of(key: str, wanted: Sequence[str]) -> dict[str, PILImage.Image] | None:
        stem, real = reals[key]
        made = {}
        for model in wanted:
            try:
                made[model] = fake_sources[model](stem, real)
            except ImageLoadError as err:
                log.error("error: %s (model %s); photo skipped", err, model)
                return None
        return made

    skipped = 0
    pairs: list[Pair] = []
    tests = 0
    for key in test_keys:
        made = fakes_of(key, models)
        if made is None:
            skipped += 1
            continue
        real_id = store(reals[key][1])
        pairs += [
            Pair(
                study_id=study.id,
                photo=key,
                model=model,
                kind="test",
                real_image_id=real_id,
                fake_image_id=store(fake),
            )
            for model, fake in made.items()
        ]
        tests += 1
        log.info("photo %d of %d done", tests, len(test_keys))
    if tests < needed:
        raise InvalidInputError(
            f"only {tests} photos have a fake of every model; {cfg.per_model} per "
            f"model x {len(models)} models needs {needed}"
        )
    practice = 0
    for i, key in enumerate(practice_keys):
        model = models[i % len(models)]
        made = fakes_of(key, [model])
        if made is None:
            skipped += 1
            continue
        pairs.append(
            Pair(
                study_id=study.id,
                photo=key,
                model=model,
                kind="practice",
                real_image_id=store(reals[key][1]),
                fake_image_id=store(made[model]),
            )
        )
        practice += 1
    for key in attention_keys:
        real = reals[key][1]
        pairs.append(
            Pair(
                study_id=study.id,
                photo=key,
                model=ATTENTION_MODEL,
                kind="attention",
                real_image_id=store(real),
                fake_image_id=store(_gray(real)),
            )
        )
    session.add_all(pairs)
    session.flush()
    return StudySummary(
        name=cfg.name,
        models=models,
        test_photos=tests,
        attention_checks=len(attention_keys),
        practice_trials=practice,
        trials_per_participant=practice + len(attention_keys) + needed,
        skipped=skipped,
    )


def create_study(
    cfg: CreateConfig, fake_sources: Mapping[str, FakeSource] | None = None
) -> StudySummary:
    """Validate `cfg`, load the photos and store the new study in one transaction.

    fake_sources: model -> FakeSource; by default from --fakes or each model's
    Colorizer. Raises SurveyError subclasses with one-line messages.
    """
    _check_config(cfg)
    engine = create_engine(cfg.db)
    try:
        init_db(engine)
        with Session(engine) as session:
            _check_name_free(session, cfg.name)
        if fake_sources is None:
            fake_sources = _fake_sources(cfg)
        folder = Path(cfg.photos)
        paths = find_photos(folder)
        if not paths:
            raise InvalidInputError(f"--photos {cfg.photos}: no image files found")
        order = np.random.default_rng(cfg.seed).permutation(len(paths))
        reals: dict[str, tuple[str, PILImage.Image]] = {}
        stems: dict[str, Path] = {}
        skipped = 0
        for i in order:
            if cfg.max_photos and len(reals) == cfg.max_photos:
                break
            path = paths[i]
            if cfg.fakes and path.stem in stems:
                log.error(
                    "error: %s: same stem as %s, and fakes are matched by stem; "
                    "photo skipped",
                    path,
                    stems[path.stem],
                )
                skipped += 1
                continue
            stems[path.stem] = path
            try:
                reals[path.relative_to(folder).as_posix()] = (
                    path.stem,
                    load_photo(path, cfg.size),
                )
            except ImageLoadError as err:
                log.error("error: %s; photo skipped", " ".join(str(err).split()))
                skipped += 1
        try:
            with Session(engine) as session, session.begin():
                summary = build_study(session, cfg, reals, fake_sources)
        except IntegrityError:
            # another process may have taken the name meanwhile: say so if it did
            with Session(engine) as session:
                _check_name_free(session, cfg.name)
            raise
    finally:
        engine.dispose()
    return dataclasses.replace(summary, skipped=summary.skipped + skipped)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m survey.create",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        conflict_handler="resolve",
    )
    add_dataclass_args(parser, CreateConfig)
    # `--model a --model b` as well as `--model a b` (replaces the generated option)
    parser.add_argument(
        "--model",
        action="extend",
        nargs="+",
        required=True,
        help=CreateConfig.__dataclass_fields__["model"].metadata["help"],
    )
    return run_main(parser, argv, _run, level=logging.WARNING, force_logging=True)


def _run(args: argparse.Namespace) -> int:
    cfg = dataclass_from_args(CreateConfig, args)
    with command_errors(cfg.db):
        summary = create_study(cfg)
    print(
        f"study {summary.name}: {summary.test_photos} photos x {len(summary.models)} "
        f"models ({' '.join(summary.models)}), {summary.attention_checks} attention "
        f"checks, {summary.practice_trials} practice; each participant answers "
        f"{summary.trials_per_participant} pairs; {summary.skipped} photos skipped"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
