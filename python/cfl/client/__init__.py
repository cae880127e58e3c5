"""FLARE's Client API on cfl: `import cfl.client as flare` in place of `import nvflare.client
as flare`.

    flare.init()
    while flare.is_running():
        model = flare.receive()          # FLModel: params, current_round, total_rounds...
        ... train ...
        flare.send(flare.FLModel(params=new_params, metrics={"accuracy": acc},
                                 meta={"NUM_STEPS_CURRENT_ROUND": steps}))
"""

from cfl.client.api import (
    get_job_id,
    get_site_name,
    get_task_name,
    init,
    is_evaluate,
    is_running,
    is_submit_model,
    is_train,
    receive,
    send,
    system_info,
)
from cfl.client.channel import ProtocolError
from cfl.client.model import FLModel, ParamsType

__all__ = [
    "FLModel",
    "ParamsType",
    "ProtocolError",
    "get_job_id",
    "get_site_name",
    "get_task_name",
    "init",
    "is_evaluate",
    "is_running",
    "is_submit_model",
    "is_train",
    "receive",
    "send",
    "system_info",
]
