"""elegere-widgets: manage the email servers of an eLegere-style Workspace."""

from . import models
from .client import Client
from .errors import ElegereError

__all__ = ["Client", "ElegereError", "models"]
__version__ = "0.1.0"
