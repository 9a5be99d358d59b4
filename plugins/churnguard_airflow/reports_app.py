"""A small FastAPI app mounted in the Airflow API server at ``/churnguard``: serves a day's reports
(drift HTML, validation and summary JSON) from the data root, wherever it is (file:// or S3)."""

from __future__ import annotations

import re

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse, JSONResponse

app = FastAPI(title="churnguard reports")
REPORTS = {"drift.html", "drift.json", "validation.json", "validation.html", "summary.json"}
DS = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@app.get("/reports/{ds}/{name}")
def report(ds: str, name: str):
    import json

    from churnguard.storage import open_storage

    if not DS.match(ds) or name not in REPORTS:
        raise HTTPException(404, f"no report '{name}' for '{ds}' (reports: {', '.join(sorted(REPORTS))})")
    try:
        body = open_storage().read_bytes(f"reports/ds={ds}/{name}")
    except FileNotFoundError:
        raise HTTPException(404, f"reports/ds={ds}/{name} does not exist (yet)") from None
    if name.endswith(".html"):
        return HTMLResponse(body.decode())
    return JSONResponse(json.loads(body))
