"""The command line run in-process for tests (a subprocess costs seconds each)."""

from course_utils.support import cli


def run_cli(argv, capsys):
    """Run ``python -m course_utils`` with ``argv``; return (exit code, stdout, stderr)."""
    try:
        code = cli.main(argv)
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err
