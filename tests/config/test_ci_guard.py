"""A CI run with a skipped test fails, and says why; outside CI a skip is a skip."""

import pytest

pytest_plugins = ["pytester"]

SKIPPING = """
import pytest

def test_runs():
    assert True

@pytest.mark.skip(reason="the tool is not installed")
def test_skipped():
    assert True
"""


@pytest.mark.parametrize(("ci", "code"), [("true", 1), ("", 0)])
def test_a_skipped_test_fails_a_ci_run_only(pytester, monkeypatch, ci, code):
    monkeypatch.setenv("CI", ci)
    pytester.makepyfile(SKIPPING)
    result = pytester.runpytest("-p", "tests.ci_guard", "-p", "no:django")
    assert result.ret == code
    result.assert_outcomes(passed=1, skipped=1)
    if code:
        result.stdout.fnmatch_lines(["*CI: 1 skipped test(s) count as failures*"])
