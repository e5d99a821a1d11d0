"""The gorouter-style HTTP router: routes by Host header to the box's apps and services.

    RouterConfig        its configuration
    serve(config)       run it until cancelled (RouterServer for the bound port)
    RouteTable          host -> Pool, kept from etcd informers
    Pool, Endpoint      the endpoints of one route and the round-robin contract of `next()`
"""

from router.config import RouterConfig
from router.main import RouterServer, serve
from router.pool import Endpoint, Pool
from router.table import RouteTable

__all__ = ["Endpoint", "Pool", "RouteTable", "RouterConfig", "RouterServer", "serve"]
