"""Names accepted by the model builder, the losses and the command lines (no heavy imports)."""

ARCHITECTURES = ("dnn", "drnn1", "drnn2", "drnn3", "srnn")  # drnnK: recurrence on hidden layer K
OUTPUT_FORMATS = ("masked", "two_sources", "one_source")
LOSSES = ("mse", "kl")


def recurrent_layer_indices(architecture, num_layers):
  """1-based indices of the hidden layers that recur, e.g. drnn2 -> (2,), srnn -> all."""
  if architecture not in ARCHITECTURES:
    raise ValueError(f"unknown architecture {architecture!r}: choose one of {', '.join(ARCHITECTURES)}")
  if architecture == "dnn":
    return ()
  if architecture == "srnn":
    return tuple(range(1, num_layers + 1))
  k = int(architecture[len("drnn"):])
  if k > num_layers:
    raise ValueError(f"architecture {architecture!r} needs at least {k} hidden layers, got {num_layers}")
  return (k,)
