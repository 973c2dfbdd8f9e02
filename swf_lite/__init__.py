"""swf-lite: the SWF Monitor's wire contract in one small Python process."""

from pathlib import Path

__version__ = (Path(__file__).parent / "VERSION").read_text().strip()
