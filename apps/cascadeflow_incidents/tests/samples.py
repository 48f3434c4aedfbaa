"""The recorded scenarios the package ships in its data folder (what the storm replays); the tests use them
too, read from the source tree."""

from pathlib import Path

SCENARIOS = Path(__file__).resolve().parents[1] / "data" / "scenarios"
