"""The README's set-up commands stay true."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    lines = (ROOT / "README.md").read_text().splitlines()
    return [line.strip()[2:] for line in lines if line.startswith("    $ ")]


def test_readme_starts_with_two_setup_commands():
    """The README gives exactly two set-up commands: the demo and the tests."""
    commands = _commands()
    assert len(commands) == 2
    assert commands[0].endswith("weightreport demo")
    assert "pytest" in commands[1]
    assert all("torch==2.13.0" in c for c in commands)


def test_ci_runs_the_readme_test_command():
    """.ci/run runs the README's test command verbatim."""
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _commands()[1] in ci
