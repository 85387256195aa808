"""Which modules of a Hugging Face model return its attention weights, for the probe.

A transformers (5.x) model says so itself: its class attribute ``_can_record_outputs``
maps ``"attentions"`` (and ``"cross_attentions"``) to the module class, or to an
``OutputRecorder`` (a class, an optional name filter and the position in the module's
output tuple), whose forward returns ``(output, weights)``. That is what
``output_attentions=True`` hooks. The probe hooks the same modules itself and never
asks the model for ``output_attentions``: that would install hooks of transformers'
own that stay on the model after the probe.

Eager attention computes the weights whatever is asked. Fused kernels (``sdpa``,
flash attention) return ``None`` in their place, and transformers 5 does not fall
back to eager for ``output_attentions`` either (it logs a warning and returns no
attentions); ``attention_note`` says so in one line instead of the maps vanishing.

Nothing here imports transformers: a model is recognised by duck typing (a module with
a ``config`` and a ``_can_record_outputs`` attribute is a ``PreTrainedModel``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from torch import nn

RECORDS = "_can_record_outputs"
"""The ``PreTrainedModel`` class attribute naming the modules whose outputs transformers records."""
WEIGHTS_AT = 1
"""Position of the weights in an attention module's ``(output, weights)`` when its recorder names none."""
MAX_NAMED = 2
"""Module names spelled out in a note; the rest are counted."""


@dataclass(frozen=True)
class _Recorder:
    """One entry of ``_can_record_outputs``, normalised (transformers' ``OutputRecorder``)."""

    target: type | None
    index: int
    layer_name: str | None
    class_name: str | None

    def matches(self, name: str, module: nn.Module) -> bool:
        """Whether ``module`` (qualified ``name``) is recorded, by transformers' own rule."""
        dotted = f".{name}"
        if not ((self.target is not None and isinstance(module, self.target))
                or (self.class_name is not None and dotted.endswith(self.class_name))):
            return False
        if self.layer_name is None:
            return True
        return f".{self.layer_name.strip('.')}." in f"{dotted}."


def _recorders(module: nn.Module) -> list[_Recorder] | None:
    """The attention recorders ``module`` declares, or None when it is no ``PreTrainedModel``."""
    if getattr(module, "config", None) is None or not hasattr(module, RECORDS):
        return None
    found = []
    for key, specs in (getattr(module, RECORDS) or {}).items():
        if not str(key).endswith("attentions"):
            continue
        for spec in specs if isinstance(specs, (list, tuple)) else [specs]:
            if isinstance(spec, type):
                found.append(_Recorder(spec, WEIGHTS_AT, None, None))
            elif isinstance(spec, str):
                found.append(_Recorder(None, WEIGHTS_AT, None, spec))
            elif hasattr(spec, "target_class"):
                found.append(_Recorder(spec.target_class, int(getattr(spec, "index", WEIGHTS_AT)),
                                       getattr(spec, "layer_name", None), getattr(spec, "class_name", None)))
    return found


def _walk(module: nn.Module, name: str, recorders: list[_Recorder]) -> Iterator[tuple[str, nn.Module, int]]:
    """Recorded modules under ``module``; a nested ``PreTrainedModel`` brings its own recorders."""
    own = _recorders(module)
    recorders = own if own is not None else recorders
    for recorder in recorders:
        if name and recorder.matches(name, module):
            yield name, module, recorder.index
            break
    for child_name, child in module.named_children():
        yield from _walk(child, f"{name}.{child_name}" if name else child_name, recorders)


def attention_modules(model: nn.Module) -> list[tuple[str, nn.Module, int]]:
    """``(qualified name, module, position of the weights in its output)`` in model order.

    Empty for a model that is not a transformers 5 ``PreTrainedModel`` (nor holds one).
    """
    return list(_walk(model, "", []))


def _is_legacy(model: nn.Module) -> bool:
    """A transformers model from before ``_can_record_outputs`` (4.x), whose weights the probe cannot take."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "output_attentions"):
        return False
    return not any(hasattr(m, RECORDS) for m in model.modules())


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMED])
    return shown + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")


def attention_note(model: nn.Module, weightless: list[str]) -> str | None:
    """One line on attention the probe could not capture, or None when nothing is missing.

    Args:
        model: the (unwrapped) model the probe ran through.
        weightless: attention modules that ran but returned no weights, in model order.
    """
    if weightless:
        impl = getattr(getattr(model, "config", None), "_attn_implementation", None)
        missing = f"no attention maps for {len(weightless)} attention module(s) ({_names(weightless)})"
        if impl == "eager":  # eager computes them: the module's output did not hold them where declared
            return f"{missing}: they ran with eager attention but returned no weights where the model declares them"
        how = f"its attention implementation ({impl})" if isinstance(impl, str) else "its attention"
        return (f"{missing}: {how} computes no weights; build the model with attn_implementation=\"eager\" "
                f"to see them in the probe")
    if _is_legacy(model):
        found = [n for n, m in model.named_modules() if type(m).__name__.endswith("Attention")]
        if found:
            return (f"no attention maps for the attention modules ({_names(found)}): the probe takes "
                    f"a Hugging Face model's weights from transformers 5 on")
    return None
