"""Every ``gulou`` process collects garbage at the collector's thresholds."""

from __future__ import annotations

import subprocess
import sys

from gulou.ingest.gc_policy import THRESHOLDS


def test_the_gulou_command_sets_the_thresholds_before_its_subcommand_runs() -> None:
    code = ("import gc, sys; from gulou.cli import main\n"
            "sys.argv = ['gulou', '--version']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(gc.get_threshold(), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip() == str(THRESHOLDS)

