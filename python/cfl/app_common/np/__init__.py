"""Names FLARE's numpy examples import from nvflare.app_common.np."""
