"""From a dataflow graph of operations to the layers of a :class:`Sequential`.

The PyTorch and ONNX importers translate their graphs into a list of :class:`Op` in
topological order; :func:`build_layers` recovers the nesting that ``Sequential``
expresses: a chain of single-input layers, with every fork closed by an addition
(a residual block whose shortcut is the identity or the "option A" subsample + zero
channel padding of CIFAR ResNets).  Anything else is refused with the names of the
nodes involved.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .layers import Conv2D, Layer, Residual

__all__ = ["Op", "build_layers", "GraphError"]


class GraphError(ValueError):
    """A graph that cannot be expressed with this package's layers."""


@dataclass
class Op:
    """One operation of an imported graph.

    kind : "layer" (``layer`` applied to the single input), "add" (two inputs),
        "identity", "subsample" (x[:, :, ::s, ::s], ``attrs["stride"]``),
        "channel_pad" (zeros before/after on the channel axis, ``attrs["pads"]``),
        "spatial_pad" (zeros (top, bottom, left, right), ``attrs["pads"]``).
    """

    name: str
    kind: str
    inputs: tuple[str, ...]
    output: str
    layer: Layer | None = None
    attrs: dict = field(default_factory=dict)


def _merge_pads(ops: list[Op]) -> list[Op]:
    """Fold each zero "spatial_pad" into the convolution that alone consumes it."""
    users: dict[str, list[Op]] = {}
    for op in ops:
        for t in op.inputs:
            users.setdefault(t, []).append(op)
    out = []
    for op in ops:
        if op.kind != "spatial_pad":
            out.append(op)
            continue
        nxt = users.get(op.output, [])
        if len(nxt) != 1 or nxt[0].kind != "layer" or not isinstance(nxt[0].layer, Conv2D):
            raise GraphError(f"node {op.name!r}: zero padding is supported only directly before a convolution.")
        conv = nxt[0].layer
        t, b, left, r = op.attrs["pads"]
        pt, pb, pl, pr = conv.padding
        new = Conv2D(conv.cin, conv.cout, conv.k, conv.stride, (pt + t, pb + b, pl + left, pr + r), conv.groups,
                     conv.bias)
        new.params = conv.params
        new.__dict__.update({k: v for k, v in vars(conv).items() if k.startswith("source")})  # importer's names
        nxt[0].layer = new
        nxt[0].inputs = op.inputs
    return out


def _option_a(branch: list[Op]) -> int | None:
    """The stride of an option-A shortcut [subsample, channel_pad], else None."""
    kinds = [op.kind for op in branch]
    if kinds == ["subsample", "channel_pad"]:
        return branch[0].attrs["stride"]
    return None


def build_layers(ops: list[Op], input_name: str, output_name: str) -> list[Layer]:
    """Nest the operations of a graph (topological order) into a list of layers.

    Parameters
    ----------
    ops : list of Op
        In topological order; consumed (padding ops are merged into the convolutions
        that follow them, in place).
    input_name, output_name : str
        The graph's input and output tensors.

    Returns
    -------
    list of Layer
        For :class:`Sequential`.

    Raises
    ------
    GraphError
        A fork that does not close with an addition, a shortcut that holds layers, a
        tensor that is computed but never reaches the output, an op of an unknown kind.
    """
    ops = _merge_pads(ops)
    alias: dict[str, str] = {}

    def res(t):
        while t in alias:
            t = alias[t]
        return t

    kept = []
    for op in ops:
        op.inputs = tuple(res(t) for t in op.inputs)
        if op.kind == "identity":
            alias[op.output] = op.inputs[0]
        else:
            kept.append(op)
    output_name = res(output_name)
    order = {op.output: i for i, op in enumerate(kept)}
    users: dict[str, list[Op]] = {}
    for op in kept:
        for t in op.inputs:
            users.setdefault(t, []).append(op)

    def merge_point(t: str) -> str:
        """The first tensor after ``t`` that every path from ``t`` passes through."""
        active = {t: len(users.get(t, []))}
        start = order.get(t, -1)
        for op in kept[start + 1:]:
            if not any(i in active for i in op.inputs):
                continue
            for i in op.inputs:
                if i not in active:
                    raise GraphError(f"node {op.name!r} combines a tensor from inside a branch with {i!r} from "
                                     "outside it; only residual additions over one block are supported.")
                active[i] -= 1
                if active[i] == 0:
                    del active[i]
            active[op.output] = len(users.get(op.output, [])) or 1
            if len(active) == 1:
                return op.output
        raise GraphError(f"the branches that leave {t!r} never join again.")

    def walk(t: str, stop: str, first: Op | None = None) -> list[Op | tuple]:
        """The chain from tensor t to tensor stop, with closed forks as ("res", ...)."""
        out: list = []
        while t != stop:
            us = [first] if first is not None else users.get(t, [])
            first = None
            if not us:
                raise GraphError(f"tensor {t!r} does not lead to the output {stop!r}.")
            if len(us) == 1:
                op = us[0]
                if op.kind == "add":
                    raise GraphError(f"node {op.name!r}: an addition that does not close a residual block.")
                if op.kind not in ("layer", "subsample", "channel_pad"):
                    raise GraphError(f"node {op.name!r}: unsupported operation kind {op.kind!r}.")
                out.append(op)
                t = op.output
                continue
            if len(us) != 2:
                raise GraphError(f"tensor {t!r} feeds {len(us)} nodes ({', '.join(u.name for u in us)}); only "
                                 "two-way residual forks are supported.")
            m = merge_point(t)
            join = kept[order[m]]
            if join.kind != "add" or len(join.inputs) != 2:
                raise GraphError(f"node {join.name!r} joins the branches from {t!r}; only additions can.")
            branches = []
            for inp in join.inputs:
                if inp == t:
                    branches.append([])
                else:
                    starts = [u for u in us if u is not join and _reaches(u, inp)]
                    branches.append(walk_from(starts[0], inp))
            out.append(("res", join, branches))
            t = m
        return out

    def _reaches(op: Op, target: str) -> bool:
        seen, todo = set(), [op]
        while todo:
            o = todo.pop()
            if o.output == target:
                return True
            if o.output in seen:
                continue
            seen.add(o.output)
            todo.extend(users.get(o.output, []))
        return False

    def walk_from(op: Op, stop: str) -> list:
        return walk(op.inputs[0], stop, first=op)

    def to_layers(chain: list) -> list[Layer]:
        layers: list[Layer] = []
        for item in chain:
            if isinstance(item, Op):
                if item.kind != "layer":
                    raise GraphError(f"node {item.name!r}: {item.kind} outside an option-A residual shortcut is "
                                     "not supported.")
                layers.append(item.layer)
                continue
            _, join, (b1, b2) = item
            flat1 = b1 if all(isinstance(o, Op) for o in b1) else None
            flat2 = b2 if all(isinstance(o, Op) for o in b2) else None
            for short, body in ((flat1, b2), (flat2, b1)):
                if short is None:
                    continue
                if not short:
                    layers.append(Residual(to_layers(body), "identity"))
                    break
                s = _option_a(short)
                if s is not None:
                    before, after = short[1].attrs["pads"]
                    if before != (before + after) // 2:
                        raise GraphError(f"node {short[1].name!r}: option-A shortcut pads channels ({before}, "
                                         f"{after}); this package pads (extra // 2, extra - extra // 2).")
                    layers.append(Residual(to_layers(body), "option_a", s))
                    break
            else:
                raise GraphError(f"node {join.name!r}: a residual block whose shortcut holds layers is not "
                                 "supported (only identity and option-A shortcuts).")
        return layers

    return to_layers(walk(res(input_name), output_name))
