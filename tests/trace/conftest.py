import sys
from pathlib import Path

# The worker module must be importable by name in spawned processes, which inherit sys.path.
sys.path.insert(0, str(Path(__file__).parent))
