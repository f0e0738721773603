"""The tender API's request bodies."""

import contextlib
import json

from pydantic import BaseModel, ValidationError

from bidding.tenders import schemas

MODELS: tuple[type[BaseModel], ...] = (
    schemas.TenderCreate,
    schemas.TenderUpdate,
    schemas.TenderCancel,
    schemas.BidField,
)


def tender_schemas(data: bytes) -> None:
    """Any body gives each request model a ValidationError or a model, nothing else: read as
    JSON text, and as the Python objects the API decodes JSON into."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        document = None
    for model in MODELS:
        with contextlib.suppress(ValidationError):
            model.model_validate_json(data)
        if document is not None:
            with contextlib.suppress(ValidationError):
                model.model_validate(document)
