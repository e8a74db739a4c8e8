"""The benchmark scripts stay importable as the package changes (they run for minutes, so tests do not run them)."""

import importlib.util
import pathlib

import pytest

BENCHMARKS = sorted((pathlib.Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda path: path.name)
def test_benchmark_imports_and_has_a_main(path):
    spec = importlib.util.spec_from_file_location(f"benchmark_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # every name it imports from bilstm_kd still exists
    assert callable(module.main) and module.__doc__
