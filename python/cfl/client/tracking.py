"""Metrics to the server: FLARE's nvflare.client.tracking.SummaryWriter.

Each value goes to the site at once, which sends it with the round's result to the server; it
lands in the job's metrics.csv (with site and round) and in `list_jobs ID --json`."""

from cfl.client import api


class SummaryWriter:
    """add_scalar(tag, value, global_step) and add_scalars(main_tag, {k: v}, global_step),
    as TensorBoard's. Non-finite values are not sent (a line on stderr says so)."""

    def __init__(self, *args, **kwargs):
        pass

    def add_scalar(self, tag, scalar_value, global_step=None, **kwargs):
        api.log_metric(tag, scalar_value, global_step)

    def add_scalars(self, main_tag, tag_scalar_dict, global_step=None, **kwargs):
        for k, v in tag_scalar_dict.items():
            api.log_metric("%s/%s" % (main_tag, k), v, global_step)

    def flush(self):
        """Nothing waits in a buffer: each value is sent when added."""

    def close(self):
        pass
