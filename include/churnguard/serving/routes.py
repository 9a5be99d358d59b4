"""The service's routes. Each handler reads the app's one :class:`~.app.Service` and, for a prediction, the
:class:`~.routing.Deployment` once: routing and scoring use that one even if a swap happens meanwhile.

Bodies are parsed here, not by FastAPI, so that an oversize batch is refused (413) before any row is
validated and every refusal has the same shape: ``{"error": "<field>: <message>", "errors": [...]}``. Handlers
and dependencies are ``async``: none waits on I/O but the admin refresh (in a thread), and FastAPI would run a
plain ``def`` in its thread pool, a hop per call on the scoring path.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING, Annotated

import numpy as np
import pandas as pd
from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request, Response, Security
from fastapi.security import APIKeyHeader
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from churnguard.registry import CHALLENGER, CHAMPION
from churnguard.serving.auth import ADMIN
from churnguard.serving.routing import Deployment
from churnguard.serving.schema import InputError
from churnguard.serving.served import ServedModel

if TYPE_CHECKING:
    from churnguard.serving.app import Service

log = logging.getLogger(__name__)
router = APIRouter()
api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="A key of CHURNGUARD_API_KEYS.")


def service_of(request: Request) -> Service:
    return request.app.state.service


async def client(request: Request, key: Annotated[str | None, Security(api_key)]) -> str:
    """The caller's role; 401 without a key, 403 with one that is not ours."""
    if not key:
        raise HTTPException(401, "X-API-Key: missing")
    role = service_of(request).keys.role(key)
    if role is None:
        raise HTTPException(403, "X-API-Key: not a key of this service")
    return role


async def admin(role: Annotated[str, Depends(client)]) -> str:
    if role != ADMIN:
        raise HTTPException(403, "X-API-Key: not an admin key")
    return role


async def read_body(request: Request, batch: bool) -> bytes:
    """The request's body, refused (413) as soon as it is known to be larger than a request may be: by its
    declared length before a byte is read, else while it streams in."""
    limit = service_of(request).schema.body_bytes(batch)
    declared = request.headers.get("content-length", "")
    too_large = InputError(413, [("body", f"larger than {limit} bytes, the most a request may send")])
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _body_schema(name: str) -> dict:
    """OpenAPI for a body the handler parses itself (the models are generated per dataset: see the app)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": name}}}}}


# --- liveness, readiness, metrics: no key -----------------------------------------------------------------
@router.get("/health", tags=["service"])
async def health() -> dict:
    """The process answers (it may have no model yet: see /ready)."""
    return {"status": "ok"}


@router.get("/ready", tags=["service"])
async def ready(request: Request, response: Response) -> dict:
    """200 once a champion is loaded, 503 before."""
    champion = service_of(request).watcher.deployment.champion
    if champion is None:
        response.status_code = 503
        return {"ready": False, "reason": "no champion loaded"}
    return {"ready": True, "champion": champion.version}


@router.get("/metrics", tags=["service"])
async def metrics(request: Request) -> Response:
    return Response(generate_latest(service_of(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)


# --- models ---------------------------------------------------------------------------------------------------
@router.get("/v1/models", tags=["models"], dependencies=[Depends(client)])
async def models(request: Request) -> dict:
    """Which version each alias serves, since when, and the share of customers it answers."""
    return models_view(service_of(request))


def models_view(service: Service) -> dict:
    watcher = service.watcher
    dep = watcher.deployment
    shares = dep.shares()
    served = {}
    for alias in (CHAMPION, CHALLENGER):
        model = dep.model(alias)
        if model is not None:
            served[alias] = {
                "version": model.version,
                "run_id": model.run_id,
                "threshold": model.threshold,
                "loaded_at": model.loaded_at.isoformat(),
                "share": shares[alias],
                "shadow": model is dep.shadowing,
            }
    return {
        "name": service.model_name,
        "mode": dep.mode,
        "models": served,
        "refused": [r.to_dict() for r in watcher.refusals.values()],
        "last_refresh": watcher.last_refresh.isoformat() if watcher.last_refresh else None,
    }


@router.post("/admin/refresh", tags=["admin"], dependencies=[Depends(admin)])
async def refresh(request: Request) -> dict:
    """Read the aliases now and swap in what moved (also versions refused before); answers when done."""
    service = service_of(request)
    result = await asyncio.to_thread(service.watcher.refresh, True)
    return {**result.to_dict(), "models": models_view(service)}


# --- predictions ----------------------------------------------------------------------------------------------
def _deployment(service: Service) -> Deployment:
    dep = service.watcher.deployment
    if dep.champion is None:
        raise HTTPException(503, "no champion loaded yet")
    return dep


def _answer(request: Request, answered: list[ServedModel], aliases: list[str]) -> None:
    """Leave who answered in the request's state, for the request counter."""
    versions = {(a, m.version) for a, m in zip(aliases, answered, strict=True)}
    alias, version = next(iter(versions)) if len(versions) == 1 else ("mixed", "mixed")
    request.state.alias, request.state.version = alias, version


def score(service: Service, dep: Deployment, frame: pd.DataFrame) -> tuple[np.ndarray, list[ServedModel], list[str]]:
    """Each row's probability from the model that answers its customer; a challenger that fails to score is
    replaced by the champion for those rows (counted)."""
    ids = frame[service.schema.id_column].tolist()
    aliases = [dep.answering(i) for i in ids]
    probabilities = np.empty(len(frame))
    for alias in sorted(set(aliases)):
        rows = np.array([a == alias for a in aliases])
        model, answering = dep.model(alias), alias
        try:
            probabilities[rows] = model.scores(frame[rows])
        except Exception:
            if alias == CHAMPION:
                raise
            log.exception("serving: challenger v%d failed to score: the champion answers", model.version)
            service.metrics.scoring_errors.labels(str(model.version), "answer").inc()
            model, answering = dep.champion, CHAMPION
            probabilities[rows] = model.scores(frame[rows])
            aliases = [CHAMPION if a == alias else a for a in aliases]
        service.metrics.scored.labels(answering, str(model.version), "answer").inc(int(rows.sum()))
    return probabilities, [dep.model(a) for a in aliases], aliases


def shadow_score(service: Service, model: ServedModel, frame: pd.DataFrame) -> None:
    """The shadow challenger scores the rows after the answer was sent (the prediction log will keep it)."""
    try:
        model.scores(frame)
    except Exception:
        log.exception("serving: shadow challenger v%d failed to score", model.version)
        service.metrics.scoring_errors.labels(str(model.version), "shadow").inc()
        return
    service.metrics.scored.labels(CHALLENGER, str(model.version), "shadow").inc(len(frame))


def _predictions(service: Service, request: Request, background: BackgroundTasks, frame: pd.DataFrame) -> list[dict]:
    dep = _deployment(service)
    probabilities, answered, aliases = score(service, dep, frame)
    _answer(request, answered, aliases)
    if dep.shadowing is not None:
        background.add_task(shadow_score, service, dep.shadowing, frame)
    ids = frame[service.schema.id_column].tolist()
    return [
        {
            service.schema.id_column: customer,
            "churn_probability": float(p),
            "churn": bool(p >= model.threshold),
            "threshold": model.threshold,
            "model": {"name": model.name, "version": model.version, "alias": alias},
        }
        for customer, p, model, alias in zip(ids, probabilities, answered, aliases, strict=True)
    ]


def _request_id(request: Request, response: Response) -> str:
    request.state.request_id = request_id = uuid.uuid4().hex
    response.headers["X-Request-ID"] = request_id
    return request_id


@router.post(
    "/v1/predict",
    tags=["predictions"],
    dependencies=[Depends(client)],
    openapi_extra=_body_schema("#/components/schemas/Customer"),
)
async def predict(request: Request, response: Response, background: BackgroundTasks) -> dict:
    """One customer's churn probability, and its label at the answering model's threshold."""
    service = service_of(request)
    request_id = _request_id(request, response)
    customer = service.schema.parse_customer(await read_body(request, batch=False))
    [answer] = _predictions(service, request, background, service.schema.frame([customer]))
    return {"request_id": request_id, **answer}


@router.post(
    "/v1/predict/batch",
    tags=["predictions"],
    dependencies=[Depends(client)],
    openapi_extra=_body_schema("#/components/schemas/Batch"),
)
async def predict_batch(request: Request, response: Response, background: BackgroundTasks) -> dict:
    """Up to ``serving.max_batch_rows`` customers, each answered by the model that answers that customer."""
    service = service_of(request)
    request_id = _request_id(request, response)
    customers = service.schema.parse_batch(await read_body(request, batch=True))
    predictions = _predictions(service, request, background, service.schema.frame(customers))
    return {"request_id": request_id, "predictions": predictions}


@router.post(
    "/v1/explain",
    tags=["predictions"],
    dependencies=[Depends(client)],
    openapi_extra=_body_schema("#/components/schemas/Customer"),
)
async def explain(request: Request, response: Response) -> dict:
    """The prediction with each column's TreeSHAP contribution to its margin (the logit), largest first."""
    service = service_of(request)
    request_id = _request_id(request, response)
    customer = service.schema.parse_customer(await read_body(request, batch=False))
    frame = service.schema.frame([customer])
    dep = _deployment(service)
    alias = dep.answering(frame[service.schema.id_column].iat[0])
    model = dep.model(alias)
    [explained] = model.explain(frame)
    probability = float(model.scores(frame)[0])
    service.metrics.scored.labels(alias, str(model.version), "explain").inc()
    request.state.alias, request.state.version = alias, model.version
    values = customer.__dict__
    return {
        "request_id": request_id,
        service.schema.id_column: values[service.schema.id_column],
        "churn_probability": probability,
        "churn": probability >= model.threshold,
        "threshold": model.threshold,
        "model": {"name": model.name, "version": model.version, "alias": alias},
        "base_value": explained.base_value,
        "margin": explained.margin,
        "contributions": [
            {"feature": name, "value": values[name], "contribution": value} for name, value in explained.contributions
        ],
    }
