"""``python -m swf_lite``: everything lives in :mod:`swf_lite.cli`."""

from swf_lite.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
