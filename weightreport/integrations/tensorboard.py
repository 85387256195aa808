"""Import TensorBoard event files into run directories, so existing logs get a report.

Works with logs from torch's ``SummaryWriter``, tensorboardX, Lightning's
``TensorBoardLogger`` and the Hugging Face Trainer's TensorBoard callback.

Layout: a folder with event files (``events.out.tfevents.*``) directly in it is one
run. A folder whose event files are only in subfolders (``lightning_logs/version_0``,
``runs/exp1``) holds several runs: the topmost subfolder holding event files is a run,
written to ``RUN_DIR/<its path under LOGDIR, / replaced by _>``. Event files further down
inside a run's folder (``add_hparams``, ``add_scalars``) are not read.

Tags are renamed by the rule tables in ``tb_tags`` (first full, case-insensitive match
wins; a tag no rule fits keeps its name):

Histograms → (tensor, kind):
    ``weights/fc1.weight``, ``parameters/fc1.weight``, ``fc1/weight``, ``fc1.weight`` → param
    ``fc1.weight``; ``grads/fc1.weight``, ``gradients/fc1.weight``, ``fc1.weight.grad``,
    ``fc1.weight/grad``, ``fc1/weight_grad`` → grad of ``fc1.weight``.
Scalars:
    ``Loss/train``, ``train/loss``, ``train_loss``, ``loss`` → ``loss``;
    ``Loss/val``, ``Loss/validation``, ``val/loss``, ``eval/loss``, ``validation/loss`` →
    ``val_loss``; in general ``<Metric>/train`` → ``<metric>``,
    ``<Metric>/val|valid|validation|eval`` → ``val_<metric>``, ``<Metric>/test`` and
    ``test/<metric>`` → ``test_<metric>`` (``accuracy`` is written ``acc``);
    ``train/learning_rate``, ``learning_rate``, ``lr``, ``lr-SGD`` → ``lr``;
    ``epoch``, ``train/epoch`` are dropped.
    The Trainer's bookkeeping (``train_runtime``, ``train_samples_per_second``,
    ``train_steps_per_second``, ``total_flos``, ``train_loss`` (its whole-run mean),
    ``eval_runtime``, ``eval_samples_per_second``, ``eval_steps_per_second``) is not a
    curve: its last value goes in run.json's ``run_info``.
    When two tags map to one name, the first in sorted order gets it; the others keep
    their own tag.

The model's structure is not in the logs: run.json's ``model`` has ``class`` null,
``modules`` empty and ``total_params`` the sum of the element counts of the parameter
histograms (null when none were logged); ``source`` says where the run came from.
Histogram moments are exact; see ``tb_buckets``.
"""

from __future__ import annotations

from pathlib import Path

from weightreport.errors import WeightReportError
from weightreport.integrations.tb_buckets import bucket_histogram, merge_buckets, stats_row
from weightreport.integrations.tb_tags import RUN_INFO, SCALAR, scalar_name, split_tag
from weightreport.runfmt.schema import FORMAT_VERSION, MANIFEST
from weightreport.runfmt.writer import RunWriter, prepare_directory

__all__ = ["bucket_histogram", "find_runs", "import_logdir", "import_tensorboard",
           "merge_buckets", "split_tag"]

EVENTS = "events.out.tfevents*"
_stats_row = stats_row  # the name tests/test_stats_fields.py imports


def _accumulator(folder: Path):
    try:
        from tensorboard.backend.event_processing import event_accumulator
    except ImportError:
        msg = "importing TensorBoard logs needs the tensorboard package; pip install 'weightreport[tensorboard]'"
        raise WeightReportError(msg) from None
    guidance = {event_accumulator.HISTOGRAMS: 0, event_accumulator.SCALARS: 0,
                event_accumulator.TENSORS: 0}
    acc = event_accumulator.EventAccumulator(str(folder), size_guidance=guidance)
    acc.Reload()
    return acc


def _check_logdir(logdir: Path) -> None:
    if not logdir.exists():
        msg = f"{logdir} does not exist; pass the folder TensorBoard wrote its event files to"
        raise WeightReportError(msg)
    if not logdir.is_dir():
        msg = f"{logdir} is a file, not a folder; pass the folder that holds the event files"
        raise WeightReportError(msg)


def _has_events(folder: Path) -> bool:
    return any(p.is_file() for p in folder.glob(EVENTS))


def find_runs(logdir: str | Path) -> dict[str, Path]:
    """The runs under ``logdir``: {name: folder}; name is ``""`` when ``logdir`` itself is the run.

    Raises:
        WeightReportError: ``logdir`` is missing, a file, or holds no event files anywhere.
    """
    logdir = Path(logdir)
    _check_logdir(logdir)
    if _has_events(logdir):
        return {"": logdir}
    folders = sorted({p.parent for p in logdir.rglob(EVENTS) if p.is_file()})
    tops = [f for f in folders if not any(o in f.parents for o in folders)]
    if not tops:
        msg = (f"{logdir} holds no TensorBoard event files (events.out.tfevents.*) in it or its "
               "subfolders; pass the log directory your SummaryWriter or logger wrote to")
        raise WeightReportError(msg)
    return {f.relative_to(logdir).as_posix().replace("/", "_"): f for f in tops}


def _refuse_existing(run_dir: Path) -> None:
    if (run_dir / MANIFEST).is_file():
        msg = f"{run_dir} already holds a run; choose a new run directory or delete that one"
        raise WeightReportError(msg)
    if run_dir.exists() and not run_dir.is_dir():
        msg = f"{run_dir} is a file, not a directory; choose another run directory"
        raise WeightReportError(msg)
    if run_dir.is_dir() and any(run_dir.iterdir()):
        msg = f"{run_dir} is not empty and holds no run; choose an empty or new directory"
        raise WeightReportError(msg)


def _guess_writer(folder: Path, tags: dict) -> str | None:
    scalars = set(tags.get("scalars", []))
    if "args/text_summary" in tags.get("tensors", []) or scalars & {"train/learning_rate", "train/grad_norm"}:
        return "transformers"
    if (folder / "hparams.yaml").is_file():
        return "lightning"
    try:
        from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

        first = next(iter(EventFileLoader(str(min(folder.glob(EVENTS)))).Load()), None)
    except Exception:  # a guess only: an unreadable first record says nothing
        return None
    if first is None or not first.file_version:
        return None
    return "torch.utils.tensorboard" if first.HasField("source_metadata") else "tensorboardX"


def _taken(keys: dict[str, object]) -> set[str]:
    """Tags whose key an earlier tag (in sorted order) already has: they keep their own name."""
    seen, clashes = set(), set()
    for tag in sorted(keys):
        if keys[tag] in seen:
            clashes.add(tag)
        seen.add(keys[tag])
    return clashes


class _Loaded:
    """One run's summaries, read and renamed, before anything is written."""

    def __init__(self, folder: Path, bins: int):
        self.folder = folder
        acc = _accumulator(folder)
        tags = acc.Tags()
        self.writer = _guess_writer(folder, tags)
        self.scalars, self.run_info = [], {}
        kinds = {t: scalar_name(t) for t in tags.get("scalars", [])}
        clashes = _taken({t: n for t, (k, n) in kinds.items() if k == SCALAR})
        for tag, (kind, name) in sorted(kinds.items()):
            events = acc.Scalars(tag)
            if kind == RUN_INFO and events:
                self.run_info[name] = float(events[-1].value)
            elif kind == SCALAR:
                self.scalars += [{"step": e.step, "name": tag if tag in clashes else name, "value": float(e.value)} for e in events]
        self.stats, self.histograms, self.numel = [], [], {}
        split = {t: split_tag(t) for t in tags.get("histograms", [])}
        clashes = _taken(split)
        for tag in sorted(split):
            tensor, kind = split[tag]
            tensor = tag if tag in clashes else tensor
            for event in acc.Histograms(tag):
                h = event.histogram_value
                edges, counts = bucket_histogram(list(h.bucket_limit), list(h.bucket), h.min, h.max)
                edges, counts = merge_buckets(edges, counts, bins)
                self.stats.append(stats_row(event.step, tensor, kind, h, edges, counts))
                self.histograms.append({"step": event.step, "tensor": tensor, "kind": kind,
                                        "edges": edges, "counts": counts})
                if kind == "param":
                    self.numel.setdefault(tensor, round(h.num))
        if not self.scalars and not self.stats:
            msg = (f"{folder} has no scalar or histogram summaries to import (only "
                   f"{sorted(k for k, v in tags.items() if v) or 'empty files'}); log with add_scalar or add_histogram")
            raise WeightReportError(msg)

    def manifest(self, name: str, logdir: Path) -> dict:
        """A run.json as complete as the collector's, saying only what the logs tell."""
        hist_steps = {r["step"] for r in self.stats}
        steps = hist_steps | {r["step"] for r in self.scalars}
        return {
            "format_version": FORMAT_VERSION, "name": name, "status": "complete", "error": None,
            "last_step": max(steps, default=0), "snapshots": len(hist_steps),
            "settings": {"source": "tensorboard", "logdir": str(self.folder)}, "config": {},
            "model": {"class": None, "total_params": sum(self.numel.values()) if self.numel else None,
                      "trainable_params": None, "modules": [], "source": "tensorboard"},
            "aliases": {}, "trajectory_indices": {}, "environment": {}, "resumed_at": [],
            "overhead": None, "cadence": [], "dropped_snapshots": 0, "collector_error": None,
            "source": {"kind": "tensorboard", "logdir": str(logdir), "writer": self.writer},
            "run_info": self.run_info,
        }

    def write(self, run_dir: Path, name: str, logdir: Path) -> Path:
        """Write the run directory; returns it."""
        prepare_directory(run_dir, "error")
        writer = RunWriter(run_dir)
        for table, rows in (("scalars", self.scalars), ("stats", self.stats),
                            ("histograms", self.histograms)):
            if rows:
                writer.add(table, rows)
        writer.flush(self.manifest(name, logdir))
        return run_dir


def import_tensorboard(
    logdir: str | Path, run_dir: str | Path, name: str | None = None, bins: int = 64
) -> Path:
    """Convert the histogram and scalar summaries of one run into a run directory.

    Args:
        logdir: a folder with TensorBoard event files (``events.out.tfevents.*``) in it.
        run_dir: the new run directory.
        name: the run's name (default: the run directory's name).
        bins: most histogram bins kept (adjacent TensorBoard buckets are merged).

    Returns:
        The run directory.

    Raises:
        WeightReportError: ``logdir`` holds no events, or several runs (use ``import_logdir``).
    """
    logdir, run_dir = Path(logdir), Path(run_dir)
    runs = find_runs(logdir)
    if "" not in runs:
        msg = (f"{logdir} holds {len(runs)} runs in subfolders ({', '.join(runs)}); import them "
               "with import_logdir, or pass one of those folders")
        raise WeightReportError(msg)
    _refuse_existing(run_dir)
    loaded = _Loaded(logdir, bins)
    return loaded.write(run_dir, name or run_dir.name, logdir)


def import_logdir(
    logdir: str | Path, run_dir: str | Path, run: str | None = None, bins: int = 64
) -> list[Path]:
    """Import every run under ``logdir`` (or only ``run``); see the module docstring for layouts.

    Args:
        logdir: a run's folder, or a folder of run folders.
        run_dir: the run directory (one run) or the folder the run directories go in.
        run: only this run (its name as written, ``version_1``, or its path, ``runs/exp1``).
        bins: most histogram bins kept.

    Returns:
        The run directories written, in name order.

    Raises:
        WeightReportError: bad ``logdir``, unknown ``run``, or a run directory in the way.
    """
    logdir, run_dir = Path(logdir), Path(run_dir)
    runs = find_runs(logdir)
    if run is not None:
        key = run.strip("/").replace("/", "_")
        if key not in runs:
            names = ", ".join(runs) if "" not in runs else f"{logdir} is a single run; drop --run"
            msg = f"no run {run!r} under {logdir}; the runs are: {names}"
            raise WeightReportError(msg)
        runs = {key: runs[key]}
    targets = {n: run_dir / n if n else run_dir for n in runs}
    if "" not in runs and (run_dir / MANIFEST).is_file():
        msg = f"{run_dir} already holds a run; choose a new folder for the {len(runs)} imported runs"
        raise WeightReportError(msg)
    for target in targets.values():
        _refuse_existing(target)
    loaded = {n: _Loaded(folder, bins) for n, folder in runs.items()}
    return [loaded[n].write(targets[n], targets[n].name, logdir) for n in sorted(runs)]
