"""FLModel and ParamsType where FLARE keeps them (nvflare.app_common.abstract.fl_model)."""

from cfl.client.model import FLModel, ParamsType

__all__ = ["FLModel", "ParamsType"]
