"""Generated pages record paths relative to the repository, not the machine's."""

from pathlib import Path

from benchmarks.performance_doc import repo_relative


def test_paths_inside_and_beside_the_repository_become_relative() -> None:
    repo = Path("/home/someone/colorize")
    text = (
        "--photos /home/someone/shared/data/test --out "
        "/home/someone/colorize/docs/results/perf/after.json, /tmp/x"
    )
    assert repo_relative(text, repo) == (
        "--photos ../shared/data/test --out docs/results/perf/after.json, $TMPDIR/x"
    )


def test_the_committed_performance_page_has_no_machine_paths() -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "performance.md").read_text()
    assert "/work/" not in page and "/home/" not in page and "/tmp/" not in page
