import sys
from pathlib import Path

# the alert tests reuse the metrics tests' emitted-series helper
sys.path.insert(0, str(Path(__file__).parent.parent / "metrics"))
