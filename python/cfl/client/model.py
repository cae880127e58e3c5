"""FLModel and ParamsType: what receive() gives and send() takes, as in FLARE."""

from enum import Enum


class ParamsType(str, Enum):
    """FULL: the model's weights. DIFF: the weights minus the global model received."""

    FULL = "FULL"
    DIFF = "DIFF"


class FLModel:
    """A model and what goes with it.

    params:        {tensor name: numpy array or torch tensor}, or None (metrics only, or the
                   get_weights task's input)
    params_type:   ParamsType.FULL or DIFF (None = FULL when params are given)
    metrics:       {name: number} sent with the result (e.g. {"accuracy": 0.9})
    meta:          {"NUM_STEPS_CURRENT_ROUND": n, ...}: n is the site's FedAvg weight
    current_round: 0-based round of the task; total_rounds: the job's rounds
    """

    def __init__(
        self,
        params_type=None,
        params=None,
        optimizer_params=None,
        metrics=None,
        start_round=0,
        current_round=None,
        total_rounds=None,
        meta=None,
    ):
        self.params_type = params_type
        self.params = params
        self.optimizer_params = optimizer_params
        self.metrics = metrics
        self.start_round = start_round
        self.current_round = current_round
        self.total_rounds = total_rounds
        self.meta = {} if meta is None else meta

    def __repr__(self):
        n = None if self.params is None else len(self.params)
        return "FLModel(params_type=%s, params=<%s tensors>, metrics=%r, current_round=%r, total_rounds=%r, meta=%r)" % (
            getattr(self.params_type, "value", self.params_type),
            n,
            self.metrics,
            self.current_round,
            self.total_rounds,
            self.meta,
        )
