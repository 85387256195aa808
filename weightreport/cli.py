"""The ``weightreport`` command line: argument parsing only; each command calls the library.

``main(argv)`` builds one parser with a subcommand per command; library errors
(``WeightReportError``) become one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from weightreport.errors import WeightReportError

PROG = "weightreport"


def _progress() -> tuple[Callable[[str], None] | None, Callable[[], None]]:
    """A rich progress bar over the build stages on a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        return None, lambda: None
    from rich.progress import Progress

    from weightreport.report import STAGES

    bar = Progress(transient=True)
    task = bar.add_task("building report", total=len(STAGES))
    bar.start()

    def advance(stage: str) -> None:
        bar.update(task, completed=STAGES.index(stage), description=f"{stage}")

    return advance, bar.stop


def cmd_build(args: argparse.Namespace) -> int:
    """``weightreport build RUN``."""
    from weightreport.report import build_report

    advance, stop = _progress()
    try:
        built = build_report(args.run, html=args.output, pdf=args.pdf, title=args.title, progress=advance)
    finally:
        stop()
    print(built.html)
    if built.pdf is not None:
        print(built.pdf)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """``weightreport demo``: train the three examples and build their reports."""
    from weightreport.demo import run_demo
    from weightreport.report import build_report

    for run_dir in run_demo(args.runs):
        built = build_report(run_dir, html=args.reports / f"{run_dir.name}.html",
                             pdf=None if args.no_pdf else True)
        print(built.html)
        if built.pdf is not None:
            print(built.pdf)
    return 0


def cmd_import_tensorboard(args: argparse.Namespace) -> int:
    """``weightreport import-tensorboard LOGDIR RUN_DIR``."""
    from weightreport.integrations.tensorboard import import_tensorboard

    print(import_tensorboard(args.logdir, args.run_dir))
    return 0


def parser() -> argparse.ArgumentParser:
    """The argument parser, one subparser per command."""
    p = argparse.ArgumentParser(prog=PROG, description="See what training did to your PyTorch network.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    b = sub.add_parser("build", help="render a run directory into an HTML (and PDF) report")
    b.add_argument("run", type=Path, metavar="RUN", help="the run directory written by Collector")
    b.add_argument("-o", "--output", type=Path, default=None, metavar="OUT.html",
                   help="the HTML file (default: reports/<run name>.html)")
    b.add_argument("--pdf", nargs="?", const=True, default=None, metavar="OUT.pdf",
                   help="also write a PDF (default path: the HTML's, with .pdf)")
    b.add_argument("--title", default=None, help="the report's title (default: the run's name)")
    b.set_defaults(func=cmd_build)
    d = sub.add_parser("demo", help="train three small example models on the CPU and build their reports")
    d.add_argument("--runs", type=Path, default=Path("runs/demo"), metavar="DIR",
                   help="where the example runs go (default: runs/demo)")
    d.add_argument("--reports", type=Path, default=Path("reports"), metavar="DIR",
                   help="where the reports go (default: reports)")
    d.add_argument("--no-pdf", action="store_true", help="build the HTML reports only")
    d.set_defaults(func=cmd_demo)
    t = sub.add_parser("import-tensorboard", help="convert TensorBoard event files into a run directory")
    t.add_argument("logdir", type=Path, metavar="LOGDIR", help="a folder of TensorBoard event files")
    t.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the new run directory")
    t.set_defaults(func=cmd_import_tensorboard)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 success, 2 bad input)."""
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except WeightReportError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
