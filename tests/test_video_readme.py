"""benchmarks.video writes the README's video figures from its record, never typed."""

import json
from pathlib import Path

import pytest

from benchmarks.video import README_END, README_START, main, readme_figures

RECORD = Path(__file__).resolve().parents[1] / "docs" / "results" / "video.json"


def test_the_readme_block_is_rewritten_from_the_record(tmp_path, capsys) -> None:
    results = json.loads(RECORD.read_text())
    readme = tmp_path / "README.md"
    readme.write_text(
        f"# T\n\nbefore\n{README_START}\nold figures\n{README_END}\nafter\n"
    )
    assert main(["--from-record", str(RECORD), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "old figures" not in text
    assert text.startswith("# T\n\nbefore\n") and text.endswith(
        f"{README_END}\nafter\n"
    )
    assert readme_figures(results) in text
    # every figure in the block comes from the record
    for name, row in results["models"].items():
        assert f"{row['stable']['flicker']:.3f}" in text
        assert f"`{name}`, per frame | {row['per_frame']['flicker']:.3f}" in text
    for goal in results["goals"]:
        assert f"{goal['value']:.3f}" in text
    # twice gives the same file
    main(["--from-record", str(RECORD), "--readme", str(readme)])
    assert readme.read_text() == text


def test_a_readme_without_the_markers_is_a_one_line_error(tmp_path, capsys) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no block\n")
    assert main(["--from-record", str(RECORD), "--readme", str(readme)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "no video figures block" in err
    assert "\n" not in err and readme.read_text() == "# no block\n"


@pytest.mark.parametrize("content", ["", "{not json"])
def test_a_bad_record_is_a_one_line_error(tmp_path, capsys, content) -> None:
    bad = tmp_path / "video.json"
    bad.write_text(content)
    assert main(["--from-record", str(bad), "--readme", str(tmp_path / "R.md")]) == 2
    assert capsys.readouterr().err.startswith("error:")
