"""The README's set-up commands stay true."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def _python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_readme_examples_run(tmp_path, index):
    """Every Python example in the README runs as written, in a fresh directory.

    An example that reads the Quickstart's run (``runs/exp1``) runs after the Quickstart,
    in the same directory, as a reader following the README would.
    """
    blocks = _python_blocks()
    scripts = [blocks[0], blocks[index]] if index and "runs/exp1" in blocks[index] else [blocks[index]]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    for n, text in enumerate(scripts):
        script = tmp_path / f"example{n}.py"
        script.write_text(text)
        done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
