"""Export a study's anonymised answers for analysis in pandas, R or a spreadsheet.

    python -m survey.export --study pilot --format csv|parquet [--db URL] [--out FILE]

Writes one row per answered trial (the columns of `survey.stats.TRIAL_COLUMNS`;
participants are numbered, their link tokens are never exported) to --out, default
`<study>.<format>`, atomically: a reader sees the old file or the new one, never half.
Prints the path written. In a CSV file, a text cell that begins with `=`, `+`, `-`,
`@`, a tab or a carriage return gets a leading `'`, so that a spreadsheet shows it as
text instead of running it as a formula (photo names and model labels come from files
and command lines; `csv_bytes`).

Exit status: 0 written; 2 unknown study, missing database, bad option or a file that
cannot be written.
"""

from __future__ import annotations

import argparse
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from core.atomic import atomic_write_bytes
from core.cli import run_main
from core.config import add_dataclass_args, dataclass_from_args
from survey.db import DEFAULT_URL, command_errors
from survey.errors import InvalidInputError
from survey.stats import load_trials

__all__ = [
    "FORMATS",
    "ExportConfig",
    "csv_bytes",
    "escape_cell",
    "export_trials",
    "main",
]

log = logging.getLogger(__name__)

FORMATS = ("csv", "parquet")
# a spreadsheet reads a cell that starts with one of these as a formula (or strips it
# before one); OWASP's advice for CSV injection is a leading single quote
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: object) -> object:
    """A text cell made safe for spreadsheets: `'` before a formula start; other
    values (numbers, missing values, harmless text) as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_bytes(trials: pd.DataFrame) -> bytes:
    """The table as UTF-8 CSV with every text cell passed through `escape_cell`.

    Numeric, boolean and date columns are written as they are: a number such as -3
    is no formula.
    """
    safe = trials.copy()
    for column in safe.columns:
        values = safe[column]
        if not (
            pd.api.types.is_numeric_dtype(values)
            or pd.api.types.is_datetime64_any_dtype(values)
        ):
            safe[column] = values.map(escape_cell)
    return safe.to_csv(index=False).encode("utf-8")


@dataclass(frozen=True)
class ExportConfig:
    study: str = field(metadata={"help": "study name"})
    format: str = field(default="csv", metadata={"help": "csv or parquet"})
    db: str = field(default=DEFAULT_URL, metadata={"help": "SQLAlchemy database URL"})
    out: str = field(
        default="", metadata={"help": "output file (default: <study>.<format>)"}
    )


def export_trials(cfg: ExportConfig) -> Path:
    """Write the study's trials table to a file; returns its path.

    Raises NotFoundError (unknown study or database) or InvalidInputError (bad
    format, parquet without pyarrow, unwritable file).
    """
    if cfg.format not in FORMATS:
        raise InvalidInputError(f"--format must be csv or parquet, got {cfg.format!r}")
    trials = load_trials(cfg.db, cfg.study)
    out = Path(cfg.out or f"{cfg.study}.{cfg.format}")
    if out.is_dir():
        raise InvalidInputError(f"--out {out} is a folder; give a file name")
    if cfg.format == "csv":
        data = csv_bytes(trials)
    else:
        buffer = io.BytesIO()
        try:
            trials.to_parquet(buffer, index=False)
        except ImportError as err:
            raise InvalidInputError(
                "parquet needs the package pyarrow: pip install pyarrow"
            ) from err
        data = buffer.getvalue()
    try:
        atomic_write_bytes(out, data)
    except OSError as err:
        raise InvalidInputError(f"cannot write {out}: {err.strerror or err}") from err
    log.info("%d trials of %s written to %s", len(trials), cfg.study, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m survey.export",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dataclass_args(parser, ExportConfig)
    return run_main(parser, argv, _run, level=logging.WARNING, force_logging=True)


def _run(args: argparse.Namespace) -> int:
    cfg = dataclass_from_args(ExportConfig, args)
    with command_errors(cfg.db):
        out = export_trials(cfg)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
