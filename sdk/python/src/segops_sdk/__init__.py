"""SegOps client SDK: `SegOpsClient(api_url, api_key).track(user_id=..., event_type=...)`."""

from segops_sdk.client import SegOpsClient
from segops_sdk.errors import ErrorKind, SegOpsClosedError, SegOpsError

__all__ = ["ErrorKind", "SegOpsClient", "SegOpsClosedError", "SegOpsError"]
__version__ = "0.1.0"
