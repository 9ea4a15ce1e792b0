"""Shared hypothesis settings for the property tests (tests/test_fuzz_*.py).

By default every property runs a fixed, derandomized set of examples, so CI
is reproducible and the whole fuzz run stays within seconds. A longer,
randomized hunt:

    TINYWS_FUZZ_EXAMPLES=20000 python -m pytest tests/test_fuzz_*.py

(add `--hypothesis-seed=N` to replay one random run; a failure prints the
falsifying example, which then belongs in the test as an `@example`).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_EXAMPLES = int(os.environ.get("TINYWS_FUZZ_EXAMPLES", "0"))

FUZZ = settings(
    max_examples=_EXAMPLES or 200,
    # Derandomized unless a longer run was asked for: the same examples every time.
    derandomize=not _EXAMPLES,
    deadline=None,
    # No example database in the work tree; failures print their example instead.
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
