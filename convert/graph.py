"""What a Keras model's graph looks like, for the manifest, and the one-face-in/scores-out check."""

from __future__ import annotations

from collections import Counter
from typing import Any


class GraphError(ValueError):
    """The model's graph cannot become an edgefer artifact (the message says why and what to do)."""


def check_single_io(model: Any) -> None:
    """Artifacts take one (N, H, W, C) face batch and return one (N, K) score matrix."""
    inputs, outputs = list(model.inputs), list(model.outputs)
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        raise GraphError(
            f"model {model.name} has inputs {[tuple(t.shape) for t in inputs]}; an edgefer artifact takes one "
            "(N, H, W, C) face input: build multi-branch (hybrid) models as branches of that one input"
        )
    if len(outputs) != 1 or len(outputs[0].shape) != 2:
        raise GraphError(
            f"model {model.name} has outputs {[tuple(t.shape) for t in outputs]}; an edgefer artifact returns one "
            "(N, num_classes) score matrix: fold the head (SVM or softmax) into the graph first"
        )


def describe_graph(model: Any) -> dict[str, Any]:
    """Branch count from the input, operation counts and parameters of a functional Keras model.

    ``branches`` counts the operations the face input feeds (1 for a plain CNN, 2 for a
    two-branch hybrid); ``operations`` includes functional ops such as ``Cos`` of a
    random-Fourier-feature RBF head.
    """
    ops = [type(op).__name__ for op in getattr(model, "operations", model.layers)]
    first = model.layers[0] if type(model.layers[0]).__name__ == "InputLayer" else None
    # Keras exposes a layer's consumers only through _outbound_nodes; one node per consuming op.
    branches = len(first._outbound_nodes) if first is not None else 1
    return {
        "name": model.name,
        "branches": int(branches),
        "operations": dict(sorted(Counter(o for o in ops if o != "InputLayer").items())),
        "params": int(model.count_params()),
        "random_fourier_features": "Cos" in ops,
    }
