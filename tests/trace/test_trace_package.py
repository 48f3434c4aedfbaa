import random
import subprocess
import sys

import numpy as np
import pytest

from cascadeflow import trace
from cascadeflow.trace.reader import percentile


def test_importing_the_records_loads_no_sink_reader_or_extra():
    code = ("import sys, cascadeflow.trace.records\n"
            "print(sorted(m for m in ('sqlite3', 'numpy', 'opentelemetry', 'cascadeflow.trace.jsonl', "
            "'cascadeflow.trace.reader') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def test_every_public_name_resolves_and_all_is_sorted():
    assert trace.__all__ == sorted(trace.__all__)
    for name in trace.__all__:
        assert getattr(trace, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        trace.Nope  # noqa: B018


@pytest.mark.parametrize("size", [1, 2, 5, 100, 1001])
def test_percentile_matches_numpys_linear_interpolation(size):
    values = [random.Random(size).uniform(0, 2000) for _ in range(size)]
    for q in (50, 95, 99):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_all_lists_exactly_the_lazy_names_and_the_records():
    assert set(trace.__all__) == set(trace._HOME) | {"AuditRecord", "DecisionRecord"}
