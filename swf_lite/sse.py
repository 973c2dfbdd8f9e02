"""The live stream (``GET /api/messages/stream/``) and its status. Placeholder: issue 5."""


def mount(app, ctx) -> None:
    """Register the stream routes and the workflow-message publish hook."""
