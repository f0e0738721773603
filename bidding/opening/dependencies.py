"""What the opening's endpoints use of what the platform runs: the live hub of this instance."""

from typing import Annotated

from fastapi import Depends
from fastapi.requests import HTTPConnection

from bidding.opening.live import Hub


def live_hub(connection: HTTPConnection) -> Hub:
    """Dependency: the hub of this instance's live rooms."""
    hub: Hub = connection.app.state.hub
    return hub


def optional_hub(connection: HTTPConnection) -> Hub | None:
    """Dependency: the hub, when this instance runs the live rooms."""
    hub: Hub | None = getattr(connection.app.state, "hub", None)
    return hub


LiveHub = Annotated[Hub, Depends(live_hub)]
OptionalHub = Annotated[Hub | None, Depends(optional_hub)]
