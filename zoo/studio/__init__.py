"""``zoo studio``: a local web page where a slider generator proposes its sliders and a person adjusts them.

- :mod:`zoo.studio.state`: the model, the sessions (one per browser tab), their photos and edits (no HTTP).
- :mod:`zoo.studio.app`: the Starlette app (the page, a JSON/JPEG API, safety checks).
- :mod:`zoo.studio.server`: running it under uvicorn, with the private upload folder removed at the end.
- ``static/``: the page (plain HTML, JS and CSS: no build step, nothing fetched from elsewhere).
"""
