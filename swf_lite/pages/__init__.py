"""The web interface: server-rendered HTML pages on both ports (no JavaScript framework, no CDN),
a browser admin, and the small stylesheet and script in ``static/``. Pages call the same service as
the API, so pages and API can never disagree."""
