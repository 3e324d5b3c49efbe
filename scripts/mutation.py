#!/usr/bin/env python3
"""Mutation testing of the modules where a silent change hurts most, with mutmut, one module at a time.

Each module runs in its own copy of a commit (``HEAD`` unless ``--revision`` or ``--worktree`` says otherwise) in
``$GULOU_MUTATION_DIR/<module>`` (default ``/tmp/gulou-mutation``), so the repository never holds mutants and a
run is not disturbed by edits made meanwhile. Only the module's fast unit tests run against its mutants.

    scripts/mutation.sh                  # every module, one after the other
    scripts/mutation.sh contract spool   # some of them
    scripts/mutation.sh --report         # scores of the last runs, without running anything
    scripts/mutation.sh --survivors rules  # the surviving mutants of a module, as diffs

Not part of CI: a full run takes hours on two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(os.environ.get("GULOU_MUTATION_DIR", "/tmp/gulou-mutation"))


@dataclass(frozen=True)
class Module:
    """One unit of mutation testing: source files, the unit tests aimed at them, optional mutant filters."""

    files: tuple[str, ...]
    tests: tuple[str, ...]
    # fnmatch patterns over mutant names (``gulou.pkg.mod.xǁClassǁmethod__mutmut_3``); empty means all.
    only: tuple[str, ...] = ()
    # Lines whose statements are never mutated: log calls and messages of errors nobody matches on.
    skip_lines: tuple[str, ...] = field(default=(r"^\s*log\.(debug|info|warning|error|exception)\(",))


MODULES: dict[str, Module] = {
    "contract": Module(
        files=("src/gulou/devices/contract.py",),
        tests=("tests/unit/devices/test_contract.py", "tests/unit/devices/test_boundaries.py",
               "tests/unit/devices/test_contract_edges.py"),
    ),
    "standards": Module(
        files=("src/gulou/rules/standards/*.py",),
        tests=tuple(f"tests/unit/rules/test_standards_{name}.py" for name in (
            "aqi", "black_odour", "data", "structure", "validity", "water", "rule_files", "recompute_tables",
            "edges")),
    ),
    "rules": Module(
        files=("src/gulou/rules/model.py", "src/gulou/rules/engine.py"),
        tests=("tests/unit/rules/test_rules_model.py", "tests/unit/rules/test_rules_engine.py",
               "tests/unit/rules/test_rules_defaults.py", "tests/unit/rules/test_rule_boundaries.py",
               "tests/unit/rules/test_alerts_lifecycle.py", "tests/unit/rules/test_derived_aqi.py",
               "tests/unit/rules/test_event_clock.py", "tests/unit/rules/test_engine_edges.py"),
    ),
    "spool": Module(
        files=("src/gulou/ingest/spool.py",),
        tests=("tests/unit/ingest/test_spool.py", "tests/unit/ingest/test_spool_edges.py"),
    ),
    # The accounting: how every message is counted (received, stored, spooled, replayed, rejected) in the
    # collector and written by the embedded store; the rest of those files (threads, health) is plumbing.
    "accounting": Module(
        files=("src/gulou/ingest/collector.py", "src/gulou/sinks/embedded.py"),
        tests=("tests/unit/ingest/test_collector_on_stored.py", "tests/unit/ingest/test_accounting.py",
               "tests/unit/sinks/test_embedded.py"),
        only=("gulou.ingest.collector.xǁCollectorǁ_process__*", "gulou.ingest.collector.xǁCollectorǁ_count__*",
              "gulou.ingest.collector.xǁCollectorǁ_replayed__*",
              "gulou.ingest.collector.xǁCollectorǁ_rejected_on_replay__*", "gulou.ingest.collector.x__rows__*",
              "gulou.sinks.embedded.xǁEmbeddedStoreǁrecord__*", "gulou.sinks.embedded.xǁEmbeddedStoreǁadd_*",
              "gulou.sinks.embedded.x__count_rows__*", "gulou.sinks.embedded.x__deadletter_rows__*"),
    ),
}

KILLED = {"killed", "timeout", "caught by type check", "segfault"}


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def prepare(name: str, module: Module, revision: str | None) -> Path:
    """A fresh copy of src/, tests/ and pyproject.toml with the module's mutmut configuration.

    The copy is of a commit (``HEAD`` by default), so edits in progress elsewhere in the tree do not decide a
    mutant's fate; ``revision=None`` copies the working tree instead.
    """
    work = WORK / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    if revision is None:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
        shutil.copytree(ROOT / "src", work / "src", ignore=ignore)
        shutil.copytree(ROOT / "tests", work / "tests", ignore=ignore)
    else:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "src", "tests"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
    files = sorted(str(p.relative_to(work)) for pattern in module.files for p in work.glob(pattern))
    tests = [t for t in module.tests if (work / t).exists()]
    config = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    config += (
        "\n[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f"only_mutate = {_toml_list(files)}\n"
        f"do_not_mutate_patterns = {_toml_list(list(module.skip_lines))}\n"
        f"pytest_add_cli_args_test_selection = {_toml_list(tests)}\n"
        # Fixed order and no cache: a mutant's verdict must not depend on the order tests ran in.
        'pytest_add_cli_args = ["-p", "no:randomly", "-p", "no:cacheprovider", "-q"]\n'
        "use_git_change_detection = false\n"
    )
    (work / "pyproject.toml").write_text(config, encoding="utf-8")
    return work


def run(name: str, module: Module, children: int, revision: str | None) -> None:
    """Generate and test the module's mutants."""
    work = prepare(name, module, revision)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "HYPOTHESIS_PROFILE": "default"}
    cmd = ["mutmut", "run", "--max-children", str(children), *module.only]
    print(f"== {name}: {' '.join(cmd)} in {work}", flush=True)
    subprocess.run(cmd, cwd=work, env=env, check=False, stdin=subprocess.DEVNULL)


def verdicts(name: str, module: Module) -> dict[str, str]:
    """Mutant name -> status, read from mutmut's result files of the last run."""
    from mutmut.stats import status_by_exit_code

    out: dict[str, str] = {}
    for meta in sorted((WORK / name / "mutants").rglob("*.py.meta")):
        data = json.loads(meta.read_text(encoding="utf-8"))
        for key, code in data.get("exit_code_by_key", {}).items():
            if not module.only or any(fnmatch(key, p) for p in module.only):
                out[key] = status_by_exit_code[code]
    return out


def report(names: list[str]) -> int:
    """Print killed/total per module; exit status 1 when a module was never run."""
    missing = 0
    print(f"{'module':<12}{'mutants':>9}{'killed':>8}{'survived':>10}{'no tests':>10}{'pending':>9}{'score':>8}")
    for name in names:
        v = verdicts(name, MODULES[name])
        if not v:
            print(f"{name:<12}{'(not run)':>9}")
            missing += 1
            continue
        statuses = list(v.values())
        killed = sum(s in KILLED for s in statuses)
        survived = statuses.count("survived")
        untested = statuses.count("no tests")
        pending = statuses.count("not checked")
        checked = len(statuses) - pending
        score = f"{killed / checked:.1%}" if checked else "-"
        print(f"{name:<12}{len(statuses):>9}{killed:>8}{survived:>10}{untested:>10}{pending:>9}{score:>8}")
    return 1 if missing else 0


def _functions(path: Path) -> dict[str, str]:
    """Source of every function in a mutated file, by name (mutmut keeps each mutant as its own function)."""
    import ast

    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    out: dict[str, str] = {}
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            out[node.name] = "\n".join(lines[node.lineno - 1:node.end_lineno])
    return out


def survivors(name: str) -> None:
    """Print every mutant of the module that no test killed, as the lines it changes."""
    import difflib

    found = verdicts(name, MODULES[name])
    sources: dict[str, dict[str, str]] = {}
    for meta in (WORK / name / "mutants").rglob("*.py.meta"):
        path = meta.with_suffix("")
        module = ".".join(path.relative_to(WORK / name / "mutants" / "src").with_suffix("").parts)
        sources[module] = _functions(path)
    for key, status in sorted(found.items()):
        if status in KILLED or status == "not checked":
            continue
        module, _, mutant = key.rpartition(".")
        # Function-level keys look like ``x_name__mutmut_3`` (or ``xǁClassǁname__mutmut_3``).
        base = mutant.rsplit("__mutmut_", 1)[0]
        funcs = sources.get(module, {})
        original = funcs.get(f"{base}__mutmut_orig", "").splitlines()
        changed = funcs.get(mutant, "").splitlines()
        diff = [line for line in difflib.unified_diff(original[1:], changed[1:], lineterm="", n=0)
                if line[:1] in "+-" and not line.startswith(("+++", "---"))]
        print(f"{key}: {status}")
        for line in diff:
            print(f"    {line.strip()[:150]}")


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=f"one of {', '.join(MODULES)} (default: all)")
    parser.add_argument("--report", action="store_true", help="only print the scores of the last runs")
    parser.add_argument("--survivors", action="store_true", help="print the surviving mutants as diffs")
    parser.add_argument("--children", type=int, default=os.cpu_count() or 2, help="parallel test processes")
    parser.add_argument("--revision", default="HEAD", help="commit to test (default HEAD)")
    parser.add_argument("--worktree", action="store_true", help="test the working tree instead of a commit")
    args = parser.parse_args()
    names = args.modules or list(MODULES)
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        parser.error(f"unknown module {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    if args.survivors:
        for name in names:
            survivors(name)
        return 0
    if not args.report:
        for name in names:
            run(name, MODULES[name], args.children, None if args.worktree else args.revision)
    return report(names)


if __name__ == "__main__":
    sys.exit(main())
