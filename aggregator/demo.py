"""``aggregator demo``: a fresh demo installation with generated sample photos.

The photos are drawn here (a hand-held sign on varied backgrounds, candles, flowers); no real
person appears in them. Everything goes through the real pipeline and ingest path.
"""

from __future__ import annotations

import io
import random
import secrets
import shutil
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter

from aggregator.config import Settings
from aggregator.db import make_engine, migrate, session_scope
from aggregator.media import process_image
from aggregator.media.storage import LocalStorage
from aggregator.media.text import draw_text, text_bbox
from aggregator.models import CONSENT_SCOPES, Origin, Role, SubmissionStatus
from aggregator.services.campaigns import create_campaign
from aggregator.services.events import create_event, share_url
from aggregator.services.ingest import Incoming, IncomingImage, ingest, media_limits
from aggregator.services.moderation import transition
from aggregator.services.users import create_user

SIGNS = [
    ("en", "We Remember"),
    ("ru", "Мы помним"),
    ("kk", "Біз еске аламыз"),
    ("he", "אנחנו זוכרים"),
]
PEOPLE = [
    ("Aigerim", "Almaty", "kk", "Біз ұмытпаймыз."),
    ("Наталья Ивановна", "Караганда", "ru", "В память о моём деде."),
    ("Daniel", "Haifa", "en", "For my grandmother's family."),
    ("Ержан", "Астана", "kk", "Әжеме арнаймын."),
    ("Мария", "Акмол", "ru", "Помним всех узниц АЛЖИРа."),
    ("Sarah", "London", "en", "Never again."),
    ("Miriam", "Tel Aviv", "he", "לזכר המשפחה."),
    ("Anonymous", "", "en", ""),
]
BACKGROUNDS = [
    ((52, 61, 74), (121, 134, 150)),
    ((88, 70, 54), (190, 160, 120)),
    ((34, 58, 44), (110, 150, 112)),
    ((70, 40, 48), (170, 120, 128)),
    ((30, 30, 36), (96, 96, 110)),
    ((120, 110, 96), (214, 204, 186)),
]
TOTAL = 24
APPROVED = 15


@dataclass(frozen=True)
class DemoInfo:
    """What the demo created, for printing."""

    base_url: str
    campaign_slug: str
    share_link: str
    admin_email: str
    admin_password: str

    def describe(self) -> str:
        """The lines printed to the person who started the demo."""
        return "\n".join(
            [
                "",
                "We Remember demo is ready.",
                f"  Upload page (participants): {self.base_url}/c/{self.campaign_slug}",
                f"  Gallery:                    {self.base_url}/c/{self.campaign_slug}/gallery",
                f"  Moderation queue:           {self.base_url}/moderate",
                f"  Slideshow (projector):      {self.share_link}",
                f"  Admin login:                {self.admin_email} / {self.admin_password}",
                "",
            ]
        )


def draw_sample_photo(index: int, *, width: int = 1600, height: int = 1200) -> bytes:
    """A JPEG of a hand-held remembrance sign on a soft background (deterministic per index)."""
    rng = random.Random(index)
    top, bottom = BACKGROUNDS[index % len(BACKGROUNDS)]
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / height
        draw.line(
            [(0, y), (width, y)],
            fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)),
        )
    # Soft out-of-focus lights, like a hall or an evening street.
    for _ in range(14):
        x, y, r = rng.randrange(width), rng.randrange(height // 2), rng.randrange(20, 90)
        glow = (255, 230 - rng.randrange(60), 170 - rng.randrange(60))
        draw.ellipse([x - r, y - r, x + r, y + r], fill=glow)
    image = image.filter(ImageFilter.GaussianBlur(18))
    draw = ImageDraw.Draw(image)
    # Candles along the bottom.
    for n in range(rng.randrange(2, 6)):
        cx = int(width * (0.12 + 0.18 * n)) + rng.randrange(-30, 30)
        draw.rectangle([cx - 18, height - 230, cx + 18, height - 60], fill=(236, 228, 210))
        draw.ellipse([cx - 12, height - 290, cx + 12, height - 236], fill=(246, 190, 80))
    # The sign: a slightly rotated card with hand-lettered text.
    lang = PEOPLE[index % len(PEOPLE)][2]
    words = dict(SIGNS)[lang]
    card = Image.new("RGBA", (900, 520), (250, 248, 240, 255))
    card_draw = ImageDraw.Draw(card)
    card_draw.rectangle([0, 0, 899, 519], outline=(60, 60, 60, 255), width=6)
    size = 110
    while size > 40:
        left, _t, right, _b = text_bbox(words, size=size, bold=True)
        if right - left < 820:
            break
        size -= 6
    draw_text(card, (450, 230), words, size=size, fill=(40, 30, 30, 255), bold=True, anchor="mm")
    draw_text(card, (450, 400), "#WeRemember", size=54, fill=(120, 40, 30, 255), anchor="mm")
    card = card.rotate(rng.uniform(-7, 7), expand=True, resample=Image.Resampling.BICUBIC)
    x = (width - card.width) // 2 + rng.randrange(-80, 80)
    y = int(height * 0.18) + rng.randrange(-40, 40)
    image.paste(card, (x, y), card)
    # Two hands holding the card (simple rounded shapes).
    skin = (196, 150, 120) if index % 3 else (140, 100, 76)
    for hx in (x + 40, x + card.width - 120):
        draw.rounded_rectangle(
            [hx, y + card.height - 60, hx + 80, y + card.height + 90], 36, fill=skin
        )
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=88)
    return buffer.getvalue()


def build_demo(settings: Settings) -> DemoInfo:
    """Wipe ``settings.var_dir`` and fill it with a complete demo."""
    shutil.rmtree(settings.var_dir, ignore_errors=True)
    settings.var_dir.mkdir(parents=True)
    engine = make_engine(settings.effective_database_url)
    migrate(engine)
    storage = LocalStorage(settings.effective_media_dir)
    password = secrets.token_urlsafe(12)
    limits = media_limits(settings)
    with session_scope(engine) as session:
        campaign = create_campaign(
            session=session,
            slug="we-remember",
            name="We Remember",
            hashtags=["WeRemember", "МыПомним", "БізЕскеАламыз"],
            description="Hold a sign saying “We Remember”, take a photo and share it. "
            "The photos will be shown at the commemoration on 27 January.",
            translations={
                "ru": {
                    "name": "Мы помним",
                    "description": "Сфотографируйтесь с табличкой «Мы помним» и поделитесь "
                    "снимком. Фотографии покажут на вечере памяти 27 января.",
                    "sign_text": "Мы помним",
                },
                "kk": {
                    "name": "Біз еске аламыз",
                    "description": "«Біз еске аламыз» деген жазуы бар парақпен суретке түсіп, "
                    "бөлісіңіз. Суреттер 27 қаңтардағы еске алу кешінде көрсетіледі.",
                    "sign_text": "Біз еске аламыз",
                },
                "he": {"name": "אנחנו זוכרים", "sign_text": "אנחנו זוכרים"},
            },
        )
        for index in range(TOTAL):
            name, city, lang, message = PEOPLE[index % len(PEOPLE)]
            processed = process_image(draw_sample_photo(index), limits=limits)
            result = ingest(
                session=session,
                storage=storage,
                campaign=campaign,
                incoming=Incoming(
                    origin=Origin.upload,
                    images=[IncomingImage(processed, f"A hand-held sign: {dict(SIGNS)[lang]}")],
                    author_name=name,
                    city=city or None,
                    text=message,
                    language=lang,
                    consent=list(CONSENT_SCOPES),
                ),
                with_receipt=True,
            )
            if index < APPROVED:
                transition(
                    session=session,
                    submission_id=result.submission.id,  # type: ignore[arg-type]
                    to=SubmissionStatus.approved,
                    actor_label="demo",
                )
        _event, link = create_event(
            session=session, campaign=campaign, name="Evening of Remembrance", interval=8
        )
        create_user(session=session, email="admin@example.org", role=Role.admin, password=password)
        info = DemoInfo(
            base_url=settings.public_base_url.rstrip("/"),
            campaign_slug=campaign.slug,
            share_link=share_url(settings.public_base_url, link),
            admin_email="admin@example.org",
            admin_password=password,
        )
    engine.dispose()
    return info
