"""Test/demo admin API under ``/_swf_lite/`` (reset, seed, config). Placeholder: issue 6."""


def mount(app, ctx) -> None:
    """Register the admin routes."""
