"""The ``weightreport`` command line: argument parsing only; each command calls the library.

``main(argv)`` builds one parser with a subcommand per command; library errors
(``WeightReportError``) become one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
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

    from weightreport.report.build import STAGES

    bar = Progress(transient=True)
    task = bar.add_task("building report", total=len(STAGES))
    bar.start()

    def advance(stage: str) -> None:
        bar.update(task, completed=STAGES.index(stage), description=f"{stage}")

    return advance, bar.stop


def cmd_build(args: argparse.Namespace) -> int:
    """``weightreport build RUN``."""
    from weightreport.report.build import build_report

    advance, stop = _progress()
    try:
        built = build_report(args.run, html=args.output, pdf=args.pdf, title=args.title,
                             thresholds=_thresholds(args), progress=advance, pdf_layers=args.pdf_layers)
    finally:
        stop()
    print(built.html)
    if built.pdf is not None:
        print(built.pdf)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """``weightreport demo``: train the three examples and build their reports."""
    from weightreport.demo import run_demo

    run_demo(args.runs, args.reports, pdf=not args.no_pdf)
    return 0


def cmd_import_tensorboard(args: argparse.Namespace) -> int:
    """``weightreport import-tensorboard LOGDIR RUN_DIR [--run NAME]``: one line per run written."""
    from weightreport.integrations.tensorboard import import_logdir

    for run_dir in import_logdir(args.logdir, args.run_dir, run=args.run):
        print(run_dir)
    return 0


def _thresholds(args: argparse.Namespace):
    from weightreport.report.analysis.thresholds import load_thresholds

    return load_thresholds(getattr(args, "config", None))


def cmd_summary(args: argparse.Namespace) -> int:
    """``weightreport summary RUN``: Markdown for a PR comment, or JSON."""
    from weightreport.report.analysis.summary import summarize
    from weightreport.runfmt.reader import load_run

    summary = summarize(load_run(args.run), _thresholds(args), report=args.report)
    if args.format == "json":
        from weightreport.runfmt.writer import dump_json

        print(dump_json(summary.to_dict()))
    else:
        from weightreport.report.render.markdown import render_summary_md

        sys.stdout.write(render_summary_md(summary))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """``weightreport check RUN``: exit 1 when findings reach ``--fail-on`` or match ``--fail-on-code``."""
    from weightreport.report.analysis.findings import gate, run_findings
    from weightreport.runfmt.reader import load_run

    found = run_findings(load_run(args.run), _thresholds(args))
    failing = gate(found, args.fail_on, args.fail_on_code)
    if args.format == "json":
        from weightreport.runfmt.writer import dump_json

        print(dump_json({"run": str(args.run), "passed": not failing, "fail_on": args.fail_on,
                         "fail_on_code": sorted(args.fail_on_code), "failing": len(failing),
                         "findings": [{**dataclasses.asdict(f), "fails": f in failing} for f in found]}))
        return 1 if failing else 0
    for f in found:
        mark = "FAIL" if f in failing else "    "
        print(f"{mark} {f.severity:<7} {f.code:<20} {f.tensor or '(run)'}: {f.message}")
    verdict = "failed" if failing else "passed"
    codes = f" or with code {', '.join(sorted(args.fail_on_code))}" if args.fail_on_code else ""
    print(f"{PROG} check {verdict}: {len(failing)} finding(s) at or above {args.fail_on}{codes}, {len(found)} in all")
    return 1 if failing else 0


def _series(path: Path) -> list[Path] | None:
    """The checkpoints of a directory of epoch checkpoints, or None for one checkpoint."""
    from weightreport.inspect.series import series_members

    return series_members(path)


def cmd_inspect(args: argparse.Namespace) -> int:
    """``weightreport inspect CHECKPOINT``: a weight report from a checkpoint."""
    from weightreport.inspect.page import build_inspect_report

    stop = lambda: None  # noqa: E731
    progress = None
    if sys.stderr.isatty():
        from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

        bar = Progress("inspecting", BarColumn(), DownloadColumn(), TimeRemainingColumn(), transient=True)
        task = bar.add_task("inspecting", total=None)
        bar.start()
        stop = bar.stop

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

    try:
        series = args.checkpoint if len(args.checkpoint) > 1 else _series(args.checkpoint[0])
        if series:
            from weightreport.inspect.series_page import build_series_report

            built = build_series_report(series, html=args.output, json=args.json)
        else:
            built = build_inspect_report(args.checkpoint[0], html=args.output, json=args.json, progress=progress)
    finally:
        stop()
    print(built.html)
    if built.json is not None:
        print(built.json)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """``weightreport diff BASE CANDIDATE``: a comparison report (HTML or Markdown)."""
    from weightreport.compare.page import build_diff

    built = build_diff(args.base, args.candidate, output=args.output, fmt=args.format,
                       thresholds=_thresholds(args))
    if built.path is None:
        sys.stdout.write(built.text)
    else:
        print(built.path)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """``weightreport compare RUN...``: one comparison of 2–50 runs (HTML, Markdown or JSON)."""
    from weightreport.compare.sweep_page import build_compare

    built = build_compare(args.runs, output=args.output, fmt=args.format, thresholds=_thresholds(args))
    if built.path is None:
        sys.stdout.write(built.text)
    else:
        print(built.path)
    return 0


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None, metavar="FILE.toml",
                   help="thresholds (default: [tool.weightreport] in the nearest pyproject.toml)")


def parser() -> argparse.ArgumentParser:
    """The argument parser, one subparser per command."""
    from weightreport import __version__

    p = argparse.ArgumentParser(prog=PROG, description="See what training did to your PyTorch network.")
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    b = sub.add_parser("build", help="render a run directory into an HTML (and PDF) report")
    b.add_argument("run", type=Path, metavar="RUN", help="the run directory written by Collector")
    b.add_argument("-o", "--output", type=Path, default=None, metavar="OUT.html",
                   help="the HTML file (default: reports/<run name>.html)")
    b.add_argument("--pdf", nargs="?", const=True, default=None, metavar="OUT.pdf",
                   help="also write a PDF (default path: the HTML's, with .pdf)")
    b.add_argument("--pdf-layers", default=None, metavar="flagged|all|N",
                   help="the layers the PDF prints per-layer charts for: those the findings name "
                   "(flagged), every layer (all), or the flagged ones plus the N with the largest "
                   "update-to-weight ratio at the last snapshot (default: 3)")
    b.add_argument("--title", default=None, help="the report's title (default: the run's name)")
    _config_arg(b)
    b.set_defaults(func=cmd_build)
    d = sub.add_parser("demo", help="train three small example models on the CPU and build their reports")
    d.add_argument("--runs", type=Path, default=Path("runs/demo"), metavar="DIR",
                   help="where the example runs go (default: runs/demo)")
    d.add_argument("--reports", type=Path, default=Path("reports"), metavar="DIR",
                   help="where the reports go (default: reports)")
    d.add_argument("--no-pdf", action="store_true", help="build the HTML reports only")
    d.set_defaults(func=cmd_demo)
    t = sub.add_parser("import-tensorboard", help="convert TensorBoard event files into a run directory")
    t.add_argument("logdir", type=Path, metavar="LOGDIR",
                   help="a folder of TensorBoard event files, or of run folders (lightning_logs, runs)")
    t.add_argument("run_dir", type=Path, metavar="RUN_DIR",
                   help="the new run directory; for several runs, the folder they go in (RUN_DIR/<run>)")
    t.add_argument("--run", default=None, metavar="NAME",
                   help="import only this run of LOGDIR (version_1, or exp1 for runs/exp1)")
    t.set_defaults(func=cmd_import_tensorboard)
    m = sub.add_parser("summary", help="a short Markdown (or JSON) summary of a run for a pull request")
    m.add_argument("run", type=Path, metavar="RUN", help="the run directory")
    m.add_argument("--format", choices=("md", "json"), default="md", help="output format (default: md)")
    m.add_argument("--report", default=None, metavar="PATH",
                   help="the full HTML report to point to (default: reports/<run name>.html)")
    _config_arg(m)
    m.set_defaults(func=cmd_summary)
    c = sub.add_parser("check", help="exit 1 when a run has findings at or above a level (for CI)")
    c.add_argument("run", type=Path, metavar="RUN", help="the run directory")
    c.add_argument("--fail-on", choices=("warning", "error"), default="error",
                   help="the lowest severity that fails the check (default: error)")
    c.add_argument("--fail-on-code", action="append", default=[], metavar="CODE",
                   help="also fail on any finding with this code, whatever its severity (repeatable)")
    c.add_argument("--format", choices=("text", "json"), default="text",
                   help="text lines (default) or one JSON object")
    _config_arg(c)
    c.set_defaults(func=cmd_check)
    i = sub.add_parser("inspect", help="a weight report from a checkpoint, with no training")
    i.add_argument("checkpoint", type=Path, nargs="+", metavar="CHECKPOINT",
                   help="a .safetensors, .pt, .pth, .bin or Lightning .ckpt file, a shard index "
                   "(*.index.json) or a save_pretrained directory; read tensor by tensor, without "
                   "running code. Several checkpoints, or a directory of them (epoch=3.ckpt, "
                   "checkpoint-500/), are a series: each layer's alpha, stable rank and norm across them")
    i.add_argument("-o", "--output", type=Path, default=None, metavar="OUT.html",
                   help="the HTML file (default: reports/<checkpoint or directory name>.html)")
    i.add_argument("--json", type=Path, default=None, metavar="OUT.json", help="also write the numbers as JSON")
    i.set_defaults(func=cmd_inspect)
    f = sub.add_parser("diff", help="compare two runs: curves, per-layer distances, statistics, findings")
    f.add_argument("base", type=Path, metavar="BASE", help="the base run directory")
    f.add_argument("candidate", type=Path, metavar="CANDIDATE", help="the candidate run directory")
    f.add_argument("-o", "--output", type=Path, default=None, metavar="OUT.html",
                   help="the output file (default: reports/diff-BASE-vs-CANDIDATE.html; md prints to stdout)")
    f.add_argument("--format", choices=("html", "md"), default="html", help="output format (default: html)")
    _config_arg(f)
    f.set_defaults(func=cmd_diff)
    c = sub.add_parser("compare", help="one report over 2–50 runs (a sweep): config, metrics, curves, layers, findings")
    c.add_argument("runs", type=Path, nargs="+", metavar="RUN",
                   help="the run directories, in the order to show them (shell globs welcome: runs/sweep/*)")
    c.add_argument("-o", "--output", type=Path, default=None, metavar="OUT",
                   help="the output file (default: reports/compare-FIRST-and-N-more.html; md and json print to stdout)")
    c.add_argument("--format", choices=("html", "md", "json"), default="html", help="output format (default: html)")
    _config_arg(c)
    c.set_defaults(func=cmd_compare)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 success, 1 check failed, 2 bad input)."""
    p = parser()
    args = p.parse_args(argv)
    if args.command is None:  # bare `weightreport`: say what there is
        p.print_help()
        return 0
    try:
        return int(args.func(args))
    except WeightReportError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
