"""FLARE's numpy constants: its numpy examples keep the whole model as one array under
NPConstants.NUMPY_KEY."""


class NPConstants:
    NUMPY_KEY = "numpy_key"
