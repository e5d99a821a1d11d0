"""`ltc create` without an event loop: create the app, then wait until every instance runs.

asyncio costs about 30 ms to import (ssl comes with it), a tenth of a whole `ltc create` of one
instance, and creating an app is one POST and a wait, which a plain thread does as well: the
API calls go over `HttpTransport` directly and the brain's event stream is read by its own
thread (app_events.py). The requests, the waiting rules and the errors are AppRunner's.

Before its request, `ltc create` imports only what the request needs: the waiting code and the
actual LRP model it reads are imported once the box has the request, while the box places and
starts the app (tests/unit/test_ltc_imports.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lattice.client.api_transport import HttpTransport
from lattice.client.app_events import EVENTS_START_TIMEOUT_S, AppEvents
from lattice.client.app_spec import AppSpec, build_create_request
from lattice.client.receptor import BlockingReceptorClient
from lattice.client.target import Target, auth_headers

if TYPE_CHECKING:
    from lattice.client.app_runner import ProgressCallback
    from lattice.models import DesiredLRP


def create_app(
    target: Target,
    spec: AppSpec,
    *,
    timeout_s: float,
    on_progress: ProgressCallback | None = None,
    watch_events: bool = True,
) -> DesiredLRP:
    """Create the app and wait until every instance is RUNNING (AppRunner.create's contract)."""
    headers = auth_headers(target)
    transport = HttpTransport(headers)
    api = BlockingReceptorClient(transport, target.receptor_url)
    # The stream opens while the app is created; the wait reads it once it is subscribed.
    events = AppEvents(api.base_url, spec.name, headers) if watch_events else None
    try:
        if events is not None:
            events.open()
        created = api.create_desired_lrp(build_create_request(spec, target.domain))
        # The waiting code (and the actual LRP model it reads) is imported now that the box
        # has the request: the imports take place while the box places and starts the app,
        # rather than before it has heard of it.
        from lattice.client.app_runner import wait_until_running_blocking

        if events is not None:
            events.wait_subscribed(min(EVENTS_START_TIMEOUT_S, timeout_s))
        wait_until_running_blocking(
            lambda: api.actual_lrps(spec.name),
            spec.name,
            created.scheduling.instances,
            timeout_s=timeout_s,
            on_progress=on_progress,
            changes=events,
        )
        return created
    finally:
        if events is not None:
            events.close()
        transport.close()
