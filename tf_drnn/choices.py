"""Names accepted by the model builder, the losses and the command lines (no heavy imports)."""

ARCHITECTURES = ("dnn", "drnn1", "drnn2", "drnn3", "srnn")  # drnnK: recurrence on hidden layer K
OUTPUT_FORMATS = ("masked", "two_sources", "one_source")
LOSSES = ("mse", "kl")
TARGETS = ("magnitude", "phase_sensitive")  # training targets: |Y| or its projection on the mixture phase
