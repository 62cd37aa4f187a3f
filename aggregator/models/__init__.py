"""Every table, imported here so ``SQLModel.metadata`` is complete."""

from aggregator.models.base import UTCDateTime, new_public_id, utcnow
from aggregator.models.campaign import (
    CONSENT_SCOPES,
    Campaign,
    ModerationMode,
    Rule,
    RuleKind,
    Source,
)
from aggregator.models.event import Event, EventHost, ExportJob, Screen, ShareLink
from aggregator.models.submission import (
    MediaAsset,
    Origin,
    StagedPhoto,
    Submission,
    SubmissionStatus,
)
from aggregator.models.user import AuditEntry, LoginSession, RateCounter, Role, User

__all__ = [
    "CONSENT_SCOPES",
    "AuditEntry",
    "Campaign",
    "Event",
    "EventHost",
    "ExportJob",
    "LoginSession",
    "MediaAsset",
    "ModerationMode",
    "Origin",
    "RateCounter",
    "Role",
    "Rule",
    "RuleKind",
    "Screen",
    "ShareLink",
    "Source",
    "StagedPhoto",
    "Submission",
    "SubmissionStatus",
    "UTCDateTime",
    "User",
    "new_public_id",
    "utcnow",
]
