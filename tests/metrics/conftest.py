import sys
from pathlib import Path

# metrics_records must be importable by name in the worker processes the multiprocess test starts
sys.path.insert(0, str(Path(__file__).parent))
