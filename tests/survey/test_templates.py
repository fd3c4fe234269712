"""The survey's HTML templates (survey/templates, Jinja2): what they escape."""

import dataclasses

import pytest

from survey import service
from survey.participant import _closed, _intro_html, _notice, open_page
from survey.results import _legacy_note
from survey.web import TEMPLATES, Markup, render

SCRIPT = "<script>alert('x')</script>"
ESCAPED = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"


def _study_info(name: str) -> service.StudyInfo:
    values = {"name": name, "trials": 6, "display_ms": 800, "practice_trials": 1}
    for field in dataclasses.fields(service.StudyInfo):
        values.setdefault(field.name, 1)
    return service.StudyInfo(**values)


def test_a_study_name_with_a_script_is_escaped_on_the_instructions_page() -> None:
    page = _intro_html(_study_info(SCRIPT))
    assert "<script" not in page
    assert f'data-study="{ESCAPED}"' in page
    assert f"Study: {ESCAPED}</p>" in page


def test_texts_with_a_script_are_escaped_on_closed_pages_and_notices() -> None:
    closed = _closed(None, f"Title {SCRIPT}", f"Text {SCRIPT}", _notice(SCRIPT, "info"))
    assert "<script" not in closed.body + closed.notice
    assert closed.body.count(ESCAPED) == 2 and ESCAPED in closed.notice


def test_an_unknown_study_named_with_a_script_is_escaped(engine) -> None:
    page = open_page(engine, SCRIPT, None)
    assert page.step == "closed" and "<script" not in page.body
    assert "&lt;script&gt;" in page.body


def test_the_results_escape_the_study_name_and_every_cell() -> None:
    html = render(
        "results.html",
        study=SCRIPT,
        exclude=True,
        participants=1,
        answers=1,
        finished=1,
        flagged=0,
        model_rows=[[SCRIPT, "1 / 1", "100.0%", "", "", 1]],
        image_rows=[],
        people_rows=[[0, "yes", "no", 1, 1, "100.0%", 0, "5 ms"]],
        time_rows=[],
    )
    assert "<script" not in html
    assert f"<strong>{ESCAPED}</strong>" in html
    assert f"<td>{ESCAPED}</td><td class=num>1 / 1</td>" in html
    assert "No answered test pairs (participants who failed" in html


def test_markup_from_another_template_is_kept_and_the_legacy_note_counts() -> None:
    notice = _notice("ok", "good")
    assert isinstance(notice, Markup)
    assert render("closed.html", title=notice, text="x").count("<p class=") == 1
    assert _legacy_note(0) == "" and "1 image of this study was" in _legacy_note(1)


@pytest.mark.parametrize("path", sorted(TEMPLATES.glob("*.css")), ids=lambda p: p.name)
def test_styles_hold_nothing_that_gradio_would_evaluate(path) -> None:
    # gr.HTML's html_template is a JavaScript template string
    text = path.read_text()
    assert "${" not in text and "`" not in text
