#!/usr/bin/env python3
"""Zero-install launcher: ``python swf_lite.py`` from a checkout == ``python -m swf_lite``.

The package directory ``swf_lite/`` shadows this file on import, so this only runs as a script.
"""

import os
import sys

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from swf_lite.cli import main

    raise SystemExit(main())
