"""Every router of the web application, in the order they are mounted."""

from aggregator.web.routes.auth import router as auth_router
from aggregator.web.routes.public import router as public_router
from aggregator.web.routes.system import router as system_router

ALL_ROUTERS = (system_router, public_router, auth_router)
