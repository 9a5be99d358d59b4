"""The prediction service's app factory and runner: ``churnguard serve`` (uvicorn over :func:`create_app`).

This is the service's edge: it loads the configs, reads the keys and the reference table, and builds the
registry the service follows; everything else in :mod:`churnguard.serving` is handed what it uses. All the
app's state is one :class:`Service` on ``app.state.service`` (its metrics registry included), so a process
may build several apps, as the tests do.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from churnguard.config import (
    DatasetConfig,
    ServingConfig,
    load_dataset_config,
    load_model_config,
    load_serving_config,
)
from churnguard.data import load_reference
from churnguard.registry import ModelRegistry
from churnguard.serving import routes
from churnguard.serving.auth import KeyRing
from churnguard.serving.metrics import MeteredApp, ServingMetrics
from churnguard.serving.refresh import ModelWatcher
from churnguard.serving.routing import Deployment
from churnguard.serving.schema import InputError, RequestSchema, build_schema, reference_domains
from churnguard.settings import Settings, get_settings
from churnguard.validation.config import load_validation_config

log = logging.getLogger(__name__)
APP_PATH = "churnguard.serving.app:create_app"


@dataclass(frozen=True)
class Service:
    """Everything the routes use: built once per app by :func:`create_app`."""

    model_name: str
    config: ServingConfig
    schema: RequestSchema
    keys: KeyRing
    metrics: ServingMetrics
    watcher: ModelWatcher


def create_app(settings: Settings | None = None, config: ServingConfig | None = None) -> FastAPI:
    """The service over the configured dataset and registered model; the first champion is loaded in the
    background once it starts (``/ready`` says when)."""
    settings = settings or get_settings()
    keys = KeyRing.from_settings(settings)
    config = config or load_serving_config()
    dataset = load_dataset_config(settings.dataset)
    optional = load_validation_config().optional_features(dataset)
    reference = load_reference(dataset)
    schema = build_schema(dataset, optional, reference_domains(reference, dataset), config.max_batch_rows)
    canary = schema.frame(schema.rows_of(canary_rows(reference, dataset, optional, config.canary_rows)))
    metrics = ServingMetrics()
    model_name = load_model_config().registered_name
    watcher = ModelWatcher(
        ModelRegistry(model_name, settings), Deployment(config.mode, config.challenger_share), canary, metrics
    )
    service = Service(model_name, config, schema, keys, metrics, watcher)

    app = FastAPI(
        title="churnguard",
        summary=f"Churn predictions of {model_name} ({dataset.name}) from the registry's champion and challenger.",
        lifespan=_lifespan,
    )
    app.state.service = service
    app.include_router(routes.router)
    app.add_middleware(MeteredApp, metrics=metrics)
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.openapi = lambda: _openapi(app, schema)
    return app


def canary_rows(reference: pd.DataFrame, dataset: DatasetConfig, optional: list[str], rows: int) -> pd.DataFrame:
    """Reference rows a new version must score: one with an optional feature missing (when the data has one,
    so the imputation path is tried), the rest spread evenly over the table."""
    missing = reference[reference[optional].isna().any(axis=1)].head(1) if optional else reference.head(0)
    spread = reference.iloc[np.linspace(0, len(reference) - 1, rows - len(missing)).astype(int)]
    return pd.concat([missing, spread], ignore_index=True)[[dataset.id.column, *dataset.features]]


@asynccontextmanager
async def _lifespan(app: FastAPI):
    """Poll the registry's aliases from start to shutdown (the first poll loads the champion)."""
    poll = asyncio.create_task(_poll(app.state.service))
    try:
        yield
    finally:
        poll.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poll


async def _poll(service: Service) -> None:
    while True:
        try:
            await asyncio.to_thread(service.watcher.refresh)
        except Exception:  # a poll never ends the polling: the next one may succeed
            log.exception("serving: refresh failed")
        await asyncio.sleep(service.config.refresh_seconds)


def _request_id(request: Request) -> dict:
    request_id = getattr(request.state, "request_id", None)
    return {"request_id": request_id} if request_id else {}


async def _input_error(request: Request, exc: InputError) -> JSONResponse:
    return JSONResponse({**exc.to_dict(), **_request_id(request)}, status_code=exc.status)


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return JSONResponse({"error": exc.detail, **_request_id(request)}, exc.status_code, headers=exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()] or [("request", "invalid")]
    return await _input_error(request, InputError(422, errors))


def _openapi(app: FastAPI, schema: RequestSchema) -> dict:
    """FastAPI's OpenAPI document with the generated request models (the handlers parse their own bodies)."""
    if app.openapi_schema is None:
        spec = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        components = spec.setdefault("components", {}).setdefault("schemas", {})
        for name, model in (("Customer", schema.customer), ("Batch", schema.batch)):
            body = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(body.pop("$defs", {}))
            components[name] = body
        app.openapi_schema = spec
    return app.openapi_schema


def serve(host: str, port: int, workers: int) -> None:
    """Run the service under uvicorn; the keys and the serving config are checked first (a ``ConfigError``
    here, not in a worker). Each worker builds its own app, polls the registry and counts its own metrics."""
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    KeyRing.from_settings(get_settings())
    load_serving_config()
    logging_config = copy.deepcopy(LOGGING_CONFIG)  # workers are new processes: say how churnguard logs there
    logging_config["loggers"]["churnguard"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    uvicorn.run(
        APP_PATH,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,  # requests are counted in /metrics; the prediction log will keep them
        log_config=logging_config,
    )
