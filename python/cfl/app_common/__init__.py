"""Names FLARE scripts import from nvflare.app_common."""
