"""The error tree. Domain code raises these; ``web/errors.py`` maps them to HTTP.

AggregatorError                  base; ``code`` is stable, ``message`` is for people
├── NotFound                      404
├── Gone                          410 (withdrawn or taken down)
├── LoginRequired                 401 (JSON under /api; elsewhere a redirect to /login)
├── Forbidden                     403
├── Conflict                      409 (e.g. another moderator decided first)
│   └── InvalidTransition         409 (state machine edge that does not exist)
├── InvalidInput                  422 (form field, CLI argument, API body)
├── TooManyRequests               429 (with ``retry_after`` seconds)
├── MediaError                    413/415/422 (see aggregator.media.ImageRejected)
└── CollectorError                a remote source failed; stored on the Source, never HTTP
    └── SourceConfigError         the source is misconfigured (bad token, 401, unknown chat)
"""

from __future__ import annotations


class AggregatorError(Exception):
    """Base of every expected failure; carries a stable ``code`` and a human ``message``."""

    status_code = 400
    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __reduce__(self) -> tuple[object, ...]:
        # Pickled whole, attributes and all, whatever a subclass's __init__ takes: the upload
        # worker (services.uploads_worker) sends them to the web process.
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(
    cls: type[AggregatorError], args: tuple[object, ...], state: dict[str, object]
) -> AggregatorError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class NotFound(AggregatorError):
    """The thing does not exist (or the caller may not know it exists)."""

    status_code = 404
    code = "not_found"


class Gone(AggregatorError):
    """The thing existed but was withdrawn or taken down."""

    status_code = 410
    code = "gone"


class LoginRequired(AggregatorError):
    """No valid login session; pages redirect to the login form, the API answers 401."""

    status_code = 401
    code = "login_required"

    def __init__(self, message: str = "Please log in.", *, next_url: str = "/") -> None:
        super().__init__(message)
        self.next_url = next_url


class Forbidden(AggregatorError):
    """The caller is known but not allowed."""

    status_code = 403
    code = "forbidden"


class Conflict(AggregatorError):
    """The request lost a race or contradicts the current state."""

    status_code = 409
    code = "conflict"


class InvalidTransition(Conflict):
    """A moderation state change that the state machine does not allow."""

    code = "invalid_transition"


class InvalidInput(AggregatorError):
    """A field or argument is wrong; ``field`` names it when known."""

    status_code = 422
    code = "invalid_input"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field


class TooManyRequests(AggregatorError):
    """Rate limit hit; retry after ``retry_after`` seconds."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class MediaError(AggregatorError):
    """An image was refused; subclasses carry the precise reason."""

    status_code = 422
    code = "media_error"


class CollectorError(AggregatorError):
    """A remote source failed; caught at the job boundary and stored on the Source."""

    status_code = 502
    code = "collector_error"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SourceConfigError(CollectorError):
    """The source cannot work as configured (bad token, login required, unknown feed)."""

    code = "source_config"
