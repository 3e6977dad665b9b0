"""The experiments page: each A/B test's numbers, and ending a test keeping one variant."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from collector.dashboard import auth
from collector.dashboard.ranges import experiment_range
from collector.dashboard.templating import not_found, render, site_of
from collector.experiments.ending import end_experiment
from collector.experiments.results import experiment_results
from collector.services import services
from collector.store import Site


@auth.admin
async def experiments_page(request: Request) -> Response:
    site = await site_of(request)
    if site is None:
        return not_found(request)
    return await _experiments_response(request, site)


async def _experiments_response(request: Request, site: Site, status: int = 200, error: str | None = None) -> Response:
    rng = experiment_range(request)
    # The same numbers as the stats API's `variants`: one code path for both.
    results = await experiment_results(
        services(request).store.db, site.settings, site.id, rng["since_ts"], rng["until_ts"], include_removed=True
    )
    ended = None
    name, kept = request.query_params.get("ended"), request.query_params.get("kept")
    if name and kept and status == 200:
        exp = next((e for e in site.settings.experiments if e.name == name), None)
        if exp is not None and not exp.enabled and any(v.name == kept for v in exp.variants):
            ended = {"name": name, "kept": kept, "kind": exp.kind, "step": exp.step}
    return render(
        request,
        "experiments.html",
        status=status,
        title=f"Experiments · {site.name}",
        site=site,
        tab="experiments",
        results=results,
        rng=rng,
        ended=ended,
        error=error,
    )


@auth.admin
async def end_experiment_post(request: Request) -> Response:
    """Ends a test and makes the kept variant the site's setting, in one step."""
    site = await site_of(request)
    if site is None:
        return not_found(request)
    form = await request.form()
    name, keep = request.path_params["name"], form.get("keep")
    if not isinstance(keep, str):
        keep = ""
    try:
        settings = end_experiment(site.settings, name, keep)
    except ValueError as exc:
        # An experiment removed or renamed since the page was loaded: say so, change nothing.
        return await _experiments_response(request, site, status=409, error=f"Nothing changed: {exc}.")
    await services(request).store.sites.update(site.key, settings=settings)
    query = urlencode({"ended": name, "kept": keep})
    return RedirectResponse(f"/admin/sites/{site.key}/experiments?{query}", status_code=303)


routes = [
    Route("/admin/sites/{key}/experiments", experiments_page, methods=["GET"]),
    Route("/admin/sites/{key}/experiments/{name}/end", end_experiment_post, methods=["POST"]),
]
