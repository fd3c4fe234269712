"""The page's tabs and panels, each built by one function and wired by another.

- `context`: `PageContext`, what every tab's handlers share (models, limits, folders).
- `settings`: the model choice and its settings (`settings_panel`, `wire_settings`).
- `photo`: the "Colorize a photo" tab (slider, download, hints, scores, comparison).
- `batch`: the "Colorize many photos" tab (zip, previews, report).

`demo.app.build_demo` assembles them inside one `gr.Blocks`; a new tab is a new module
here (or beside, like `demo.video_tab`) with a builder called from there.
"""

# The tabs call the handlers of `demo.app`, which imports the tabs to assemble the
# page: loading `demo.app` first lets any tab module be imported on its own.
from demo import app as _app  # noqa: E402, F401
