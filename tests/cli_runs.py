"""Running `tiermem` commands in-process, and reading the one error line a refusal prints."""

from __future__ import annotations

from typer.testing import CliRunner, Result

from tiermem.cli import app

runner = CliRunner()


def run(*args: object) -> Result:
    """The command's result; an exception other than the command's own exit is raised."""
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def one_error(result: Result) -> str:
    """The single `error:` line of a failed command (exit code 1)."""
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 1 and len(errors) == 1, result.output
    return errors[0]
