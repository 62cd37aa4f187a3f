"""Archive export for museums: a BagIt 1.0 bag (RFC 8493) in a zip.

Only approved items whose participants consented to ``archive`` are included. Layout::

    <bag>/bagit.txt, bag-info.txt
    <bag>/data/event.json                     the event and campaign
    <bag>/data/images/<item id>.jpg           the processed images (no originals are kept)
    <bag>/data/metadata/<submission id>.json  source URL, author as given, dates, language,
                                              consent scopes, images, moderation history
    <bag>/manifest-sha256.txt                 checksum of every payload file
    <bag>/tagmanifest-sha256.txt              checksum of every tag file

Moderation history comes from the append-only AuditEntry rows; staff appear by role, never by
e-mail address.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from aggregator import __version__
from aggregator.models import AuditEntry, Source, Submission, User, utcnow
from aggregator.services.exports import ExportContext
from aggregator.services.slideshows import Slide


def _json(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n").encode()


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _history(ctx: ExportContext, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    history: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if not ids:
        return history
    rows = ctx.session.exec(
        select(AuditEntry, User.role)
        .outerjoin(User, col(User.id) == col(AuditEntry.actor_id))
        .where(col(AuditEntry.submission_id).in_(ids))
        .order_by(col(AuditEntry.at), col(AuditEntry.id))
    ).all()
    for entry, role in rows:
        history[entry.submission_id or 0].append(
            {
                "at": _iso(entry.at),
                "action": entry.action,
                "from": entry.from_status,
                "to": entry.to_status,
                "by": str(role) if role else (entry.actor_label or "system"),
                "reason": entry.reason,
            }
        )
    return history


def item_metadata(
    submission: Submission,
    source: Source | None,
    images: list[dict[str, Any]],
    history: list[dict[str, Any]],
) -> dict[str, Any]:
    """The metadata record of one submission."""
    return {
        "id": submission.public_id,
        "origin": str(submission.origin),
        "source": {
            "kind": source.kind if source else "upload",
            "name": source.name if source else "",
            "url": submission.url,
            "external_id": submission.external_id,
        },
        "author": {
            "name": submission.author_name,
            "handle": submission.author_handle,
            "url": submission.author_url,
        },
        "city": submission.city,
        "text": submission.text,
        "language": submission.language,
        "hashtags": submission.hashtags,
        "dates": {
            "posted": _iso(submission.posted_at),
            "received": _iso(submission.created_at),
            "decided": _iso(submission.decided_at),
        },
        "consent": submission.consent,
        "status": str(submission.status),
        "images": images,
        "moderation": history,
    }


def write_archive(ctx: ExportContext, slides: list[Slide], path: Path) -> None:
    """Write the bag for ``slides`` (already limited to archive consent) as a zip."""
    bag = f"{ctx.campaign.slug}-event-{ctx.event.id}-archive"
    manifest: list[tuple[str, str]] = []
    payload_bytes = 0
    by_submission: dict[int, list[Slide]] = defaultdict(list)
    for slide in slides:
        by_submission[slide.submission_id].append(slide)
    ids = list(by_submission)
    submissions = (
        {s.id: s for s in ctx.session.exec(select(Submission).where(col(Submission.id).in_(ids)))}
        if ids
        else {}
    )
    sources = {s.id: s for s in ctx.session.exec(select(Source))}
    history = _history(ctx, ids)
    total = max(1, len(slides))
    done = 0
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:

        def add(name: str, data: bytes, *, stored: bool = False) -> None:
            nonlocal payload_bytes
            archive.writestr(
                f"{bag}/{name}",
                data,
                compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED,
            )
            if name.startswith("data/"):
                manifest.append((hashlib.sha256(data).hexdigest(), name))
                payload_bytes += len(data)

        for submission_id, items in by_submission.items():
            submission = submissions[submission_id]
            images = []
            for slide in items:
                with ctx.storage.open(slide.keys["slide"]) as handle:
                    data = handle.read()
                name = f"data/images/{slide.id}.jpg"
                add(name, data, stored=True)
                images.append(
                    {
                        "file": name.removeprefix("data/"),
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "width": slide.width,
                        "height": slide.height,
                        "alt_text": slide.alt,
                    }
                )
                done += 1
                ctx.progress(done / total * 0.95)
            source = sources.get(submission.source_id) if submission.source_id else None
            record = item_metadata(submission, source, images, history.get(submission_id, []))
            add(f"data/metadata/{submission.public_id}.json", _json(record))
        add(
            "data/event.json",
            _json(
                {
                    "event": {
                        "id": ctx.event.id,
                        "name": ctx.event.name,
                        "starts_at": _iso(ctx.event.starts_at),
                    },
                    "campaign": {
                        "slug": ctx.campaign.slug,
                        "name": ctx.campaign.name,
                        "hashtags": ctx.campaign.hashtags,
                        "sign_text": ctx.campaign.sign_text,
                    },
                    "items": len(by_submission),
                    "images": len(slides),
                    "consent_scope": "archive",
                    "exported_at": _iso(utcnow()),
                }
            ),
        )
        tags = {
            "bagit.txt": b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n",
            "bag-info.txt": (
                f"Bagging-Date: {utcnow().date().isoformat()}\n"
                f"Bag-Software-Agent: We Remember {__version__}\n"
                f"External-Description: {ctx.event.name} ({ctx.campaign.name})\n"
                f"Payload-Oxum: {payload_bytes}.{len(manifest)}\n"
            ).encode(),
            "manifest-sha256.txt": "".join(f"{h}  {n}\n" for h, n in manifest).encode(),
        }
        for name, data in tags.items():
            archive.writestr(f"{bag}/{name}", data)
        tagmanifest = "".join(
            f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in tags.items()
        )
        archive.writestr(f"{bag}/tagmanifest-sha256.txt", tagmanifest.encode())
