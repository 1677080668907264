"""The examples in the docstrings of the app's chart helpers run (pytest's --doctest-modules
covers src/ only; app/components is imported here the way the app imports it). They cover
axis titles that say their unit (``measures_title``), tick counts (``time_ticks``), the running
period's marks (``partial_period``), chart descriptions (``a11y``) and the lead list's column order."""

from __future__ import annotations

import doctest
import importlib
import sys

import pytest

from app_support import APP_DIR

MODULES = ("components.charts", "components.partial_period", "components.a11y", "components.cards",
           "components.lead_list")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    if str(APP_DIR) not in sys.path:
        sys.path.insert(0, str(APP_DIR))
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0, result
