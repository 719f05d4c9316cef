"""CI runs the whole suite on the embedded server, then again on the machine's server the tests
that depend on the server's version (`-m server`, tests/conftest.py SERVER_DEPENDENT)."""

from pathlib import Path

from tests.conftest import SERVER_DEPENDENT

ROOT = Path(__file__).resolve().parents[2]


def test_every_module_ci_runs_again_on_the_machine_s_server_exists():
    missing = sorted(name for name in SERVER_DEPENDENT if not (ROOT / name).is_file())
    assert not missing


def test_ci_runs_those_modules_on_the_machine_s_server():
    script = (ROOT / ".ci" / "run").read_text()
    [second_pass] = [line for line in script.splitlines() if 'DATABASE_URL="$PG_URL"' in line]
    assert "-m server" in second_pass
