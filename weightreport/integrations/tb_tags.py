"""TensorBoard tag names → weightreport names, as two tables of (regex, replacement) rules.

Each tag is matched in full, case-insensitively, against the rules in order; the first
rule that matches decides. A tag that fits no rule is kept exactly as it is.

Histogram tags (``HISTOGRAM_RULES``) become (tensor, kind); ``/`` in the tensor name
becomes ``.`` (``fc1/weight`` → ``fc1.weight``).

Scalar tags (``SCALAR_RULES``) become a scalar name, are dropped (``DROP``), or are
Trainer bookkeeping kept in the manifest's ``run_info`` (``RUN_INFO``). In a
replacement, ``{m}`` is the metric's word lower-cased, with ``accuracy`` → ``acc``
and ``learning_rate`` → ``lr``; ``{info}`` is the bookkeeping name as written.
"""

from __future__ import annotations

import re

SCALAR = "scalar"
DROP = "drop"
RUN_INFO = "run_info"

_TRAIN = r"train|training"
_VAL = r"val|valid|validation|eval|evaluation"
_INFO = r"train_runtime|train_samples_per_second|train_steps_per_second|total_flos"

HISTOGRAM_RULES: list[tuple[str, str, str]] = [
    # (pattern, tensor replacement, kind)
    (r"(?:grads?|gradients?)/(.+)", r"\1", "grad"),  # grads/fc1.weight, gradients/fc1.weight
    (r"(.+)[./_](?:grads?|gradients?)", r"\1", "grad"),  # fc1.weight.grad, fc1.weight/grad, fc1/weight_grad
    (r"(?:weights?|params?|parameters?)/(.+)", r"\1", "param"),  # weights/fc1.weight, parameters/...
    (r"(.+)", r"\1", "param"),  # fc1.weight, fc1/weight
]

SCALAR_RULES: list[tuple[str, str, str]] = [
    # (pattern, destination, replacement); the Hugging Face Trainer writes train/<key> and eval/<key>.
    (rf"(?:train/)?(?P<info>{_INFO})", RUN_INFO, "{info}"),  # train/train_runtime, train/total_flos
    (r"train/(?P<info>train_loss)", RUN_INFO, "{info}"),  # the Trainer's whole-run mean loss, one point
    (r"(?:eval/|eval_)(?P<info>runtime|samples_per_second|steps_per_second)", RUN_INFO, "eval_{info}"),
    (rf"(?:(?:{_TRAIN}|{_VAL}|test)/)?epoch", DROP, ""),  # train/epoch, epoch: not a curve
    (r"lr|learning_rate|lr-[A-Za-z0-9]+", SCALAR, "lr"),  # lr-SGD: Lightning's LearningRateMonitor
    (rf"(?P<m>[^/]+)/(?:{_TRAIN})", SCALAR, "{m}"),  # Loss/train, Accuracy/train
    (rf"(?:{_TRAIN})[/_](?P<m>[^/]+)", SCALAR, "{m}"),  # train/loss, train_loss, train/learning_rate
    (rf"(?P<m>[^/]+)/(?:{_VAL})", SCALAR, "val_{m}"),  # Loss/val, Loss/validation, Accuracy/eval
    (rf"(?:{_VAL})[/_](?P<m>[^/]+)", SCALAR, "val_{m}"),  # val/loss, eval/loss, validation_loss
    (r"(?P<m>[^/]+)/test", SCALAR, "test_{m}"),  # Loss/test
    (r"test[/_](?P<m>[^/]+)", SCALAR, "test_{m}"),  # test/loss, test_acc
    (r"(?P<m>loss|acc|accuracy)", SCALAR, "{m}"),  # loss, Accuracy
]

_WORDS = {"accuracy": "acc", "learning_rate": "lr"}
_HIST = [(re.compile(p, re.I), r, k) for p, r, k in HISTOGRAM_RULES]
_SCALAR = [(re.compile(p, re.I), d, r) for p, d, r in SCALAR_RULES]


def split_tag(tag: str) -> tuple[str, str]:
    """(tensor name, kind) for a histogram tag: ``grads/fc1.weight`` → (``fc1.weight``, ``grad``)."""
    for pattern, replacement, kind in _HIST:
        match = pattern.fullmatch(tag)
        if match:
            name = match.expand(replacement).replace("/", ".").strip(".")
            return name or tag, kind
    return tag, "param"  # unreachable: the last rule matches every tag


def scalar_name(tag: str) -> tuple[str, str]:
    """Where a scalar tag goes and its name: (``SCALAR``, ``RUN_INFO`` or ``DROP``, name).

    ``Loss/train`` → (scalar, ``loss``); ``eval/loss`` → (scalar, ``val_loss``);
    ``train/train_runtime`` → (run_info, ``train_runtime``); ``train/epoch`` → (drop, ``train/epoch``).
    """
    for pattern, destination, replacement in _SCALAR:
        match = pattern.fullmatch(tag)
        if match:
            groups = match.groupdict()
            word = (groups.get("m") or "").lower()
            name = replacement.format(m=_WORDS.get(word, word), info=groups.get("info"))
            return destination, name or tag
    return SCALAR, tag
