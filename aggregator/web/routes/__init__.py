"""Every router of the web application, in the order they are mounted.

A request is matched against the routers in this order (and ``url_for`` searches them in it),
so the participant's upload and receipt come first: under a crowd of phones uploading at
once, every route tried before theirs is time the event loop receiving the photos spends
(none of their paths is shared with a later router, so the order decides nothing else).
"""

from aggregator.web.routes.admin import router as admin_router
from aggregator.web.routes.admin_sources import router as admin_sources_router
from aggregator.web.routes.admin_users import router as admin_users_router
from aggregator.web.routes.api_moderation import router as api_moderation_router
from aggregator.web.routes.api_read import router as api_read_router
from aggregator.web.routes.api_uploads import router as api_uploads_router
from aggregator.web.routes.auth import router as auth_router
from aggregator.web.routes.gallery import router as gallery_router
from aggregator.web.routes.hosts import router as hosts_router
from aggregator.web.routes.hosts_control import router as hosts_control_router
from aggregator.web.routes.moderation import router as moderation_router
from aggregator.web.routes.participate import router as participate_router
from aggregator.web.routes.participate_poster import router as poster_router
from aggregator.web.routes.participate_receipt import router as receipt_router
from aggregator.web.routes.public import router as public_router
from aggregator.web.routes.slideshow import router as slideshow_router
from aggregator.web.routes.system import router as system_router

ALL_ROUTERS = (
    participate_router,
    receipt_router,
    api_uploads_router,
    system_router,
    public_router,
    auth_router,
    gallery_router,
    api_read_router,
    slideshow_router,
    poster_router,
    moderation_router,
    api_moderation_router,
    admin_router,
    admin_sources_router,
    admin_users_router,
    hosts_router,
    hosts_control_router,
)
