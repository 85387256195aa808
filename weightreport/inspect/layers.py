"""What a checkpoint's tensors are, from their names and shapes alone: layer kind and model order.

A bare checkpoint carries no module tree, so both are read from the qualified names:

- **kind** (``layer_kind``): a tensor of three or more dimensions is a ``conv`` kernel; a
  name with an embedding word (``embed``, ``wte``, ``wpe``) is an ``embedding``; a name
  inside an MLP (``mlp``, ``ffn``, ``feed_forward``, ``intermediate``, ``fc1``/``fc2``,
  ``up``/``down``/``gate_proj``, BERT's block ``output.dense``) is ``MLP``; inside
  attention (``attn``, ``attention``), the projection's own module name (the segment
  before ``weight``/``bias``) gives ``attention q``, ``k``, ``v`` or ``o`` (``query``/
  ``q_proj``/``wq``..., ``out_proj``/``o_proj``/``c_proj``, BERT's ``output.dense``), and a
  fused one (``qkv``, ``c_attn``, ``in_proj``) ``attention qkv``; an attention tensor
  with another name (a LayerNorm) and anything else is ``other``.
- **model order** (``model_order``): safetensors stores names sorted as text, so
  ``layer.10`` comes before ``layer.2`` and a block's ``attention.output`` before its
  ``attention.self.query``. When a checkpoint's names are stored sorted, they are re-ordered: embeddings
  first; then each numbered block by its numbers (``layer.2`` before ``layer.10``), inside
  a block attention (qkv, or q, k, v), then o, before the MLP; heads (``pooler``, ``classifier``,
  ``lm_head``, a final norm) last. Names stored in any other order (a ``torch.save``d
  state dict is in definition order) keep it.
"""

from __future__ import annotations

import re

KINDS = ("embedding", "attention qkv", "attention q", "attention k", "attention v", "attention o",
         "MLP", "conv", "other")
"""Every kind, in the order legends and counts list them."""

_EMBED = re.compile(r"emb|(^|\.)(wte|wpe|tok_embeddings|lookup)(\.|$)")
_ATTN = re.compile(r"attn|attention|(^|\.)(q|k|v|o)_proj(\.|$)")
_MLP = re.compile(r"(^|[._])(mlp|ffn|feed_forward|feedforward|intermediate|densereludense|fc1|fc2|c_fc|"
                  r"up_proj|down_proj|gate_proj|dense_h_to_4h|dense_4h_to_h|w1|w2|w3)([._]|$)")
_ROLES = {  # the projection's own module name → its role in attention
    "attention qkv": {"qkv", "c_attn", "in_proj", "query_key_value", "wqkv", "qkv_proj"},
    "attention q": {"query", "q", "q_proj", "wq", "to_q", "q_lin"},
    "attention k": {"key", "k", "k_proj", "wk", "to_k", "k_lin"},
    "attention v": {"value", "v", "v_proj", "wv", "to_v", "v_lin"},
    "attention o": {"out_proj", "o_proj", "c_proj", "wo", "to_out", "out_lin", "proj", "o", "out"},
}
_PARAM_NAMES = {"weight", "bias", "in_proj_weight", "in_proj_bias"}
_HEAD = re.compile(r"(^|\.)(pooler|classifier|lm_head|head|heads|score|qa_outputs|cls|ln_f|norm_f|final_norm|"
                   r"final_layer_norm|fc)(\.|$)")
_NUMBER = re.compile(r"^\d+$")
_ROLE_RANK = {k: i for i, k in enumerate(KINDS)}


def _module(name: str) -> list[str]:
    """The module path of a parameter name (its last segment dropped when it names a parameter)."""
    parts = name.lower().split(".")
    if len(parts) > 1 and parts[-1] in _PARAM_NAMES:
        parts = parts[:-1]
    if parts and parts[-1] in {"in_proj_weight", "in_proj_bias"}:
        parts[-1] = "in_proj"
    return parts


def layer_kind(name: str, shape: tuple[int, ...] | list[int]) -> str:
    """The kind of a tensor (one of ``KINDS``), from its qualified name and its shape."""
    lower = name.lower()
    if len(shape) >= 3:
        return "conv"
    if _EMBED.search(lower):
        return "embedding"
    if _MLP.search(lower):
        return "MLP"
    parts = _module(name)
    if name.lower().endswith("in_proj_weight"):
        return "attention qkv"
    if _ATTN.search(lower):
        last = parts[-1] if parts else ""
        for kind, names in _ROLES.items():
            if last in names:
                return kind
        if parts[-2:] == ["output", "dense"]:
            return "attention o"  # BERT's attention.output.dense
        return "other"
    if parts[-2:] == ["output", "dense"]:
        return "MLP"  # BERT's block output.dense (outside .attention.) is the MLP's second matrix
    return "other"


def _block_key(name: str) -> tuple:
    """(stem, numbers) of a name: the text before its first number, and every number in it."""
    parts = name.split(".")
    first = next((i for i, p in enumerate(parts) if _NUMBER.match(p)), None)
    if first is None:
        return (name, ())
    return (".".join(parts[:first]), tuple(int(p) for p in parts if _NUMBER.match(p)))


def model_order(names: list[str], shapes: list, sorted_storage: bool) -> list[int]:
    """Indices of ``names`` in model order (see the module docstring).

    Args:
        names: qualified tensor names, in stored order.
        shapes: their shapes (for the kinds).
        sorted_storage: True when the stored order is text order rather than the model's.
    """
    if not sorted_storage:
        return list(range(len(names)))
    stems: dict[str, int] = {}
    keys = []
    for i, (name, shape) in enumerate(zip(names, shapes, strict=True)):
        kind = layer_kind(name, shape)
        stem, numbers = _block_key(name)
        stems.setdefault(stem, len(stems))
        group = 0 if kind == "embedding" else 2 if _HEAD.search(stem.lower()) else 1
        keys.append((group, stems[stem] if numbers else -1, numbers, _ROLE_RANK.get(kind, len(KINDS)), i))
    return [k[-1] for k in sorted(keys)]
