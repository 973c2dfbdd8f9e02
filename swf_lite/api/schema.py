"""OpenAPI 3 document at ``GET /api/schema/``, derived from the catalog. Placeholder: issue 4."""


def mount(app, ctx) -> None:
    """Register the schema route."""
