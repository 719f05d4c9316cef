"""Under CI (`CI=true`, as `.ci/run` sets it), a run with a skipped test fails: CI installs what
every test needs (Chromium, PgBouncer), so a skip there is a test that did not run, not a
machine that cannot run it. Deselected tests (`-m server`) are not skipped ones."""

import os

import pytest


def _under_ci() -> bool:
    return os.environ.get("CI") == "true"


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _under_ci():
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if _under_ci() and skipped:
        terminalreporter.write_line(
            f"CI: {len(skipped)} skipped test(s) count as failures: each must run here.",
            red=True,
        )
