"""The upload page on a phone-sized Chromium: two photos (one HEIC) with progress bars, the
receipt, withdrawal; a refused file explained in Russian; the form without JavaScript; and
axe-core finding no serious or critical accessibility problem."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlmodel import Session, select

from aggregator.config import Settings
from aggregator.media import process_image
from aggregator.media.storage import LocalStorage
from aggregator.models import Origin, Submission, SubmissionStatus
from aggregator.services.campaigns import create_campaign, get_campaign
from aggregator.services.ingest import Incoming, IncomingImage, ingest
from tests.conftest import REQUIRE_BROWSER, ConsoleErrors
from tests.media_samples import heic, photo
from tests.upload_support import media_files, photo_jpeg

pytestmark = pytest.mark.browser

PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
def campaign_slug(session: Session) -> str:
    campaign = create_campaign(
        session=session,
        slug="we-remember",
        name="We Remember",
        hashtags=["weremember"],
        description="Photos for the evening of remembrance.",
        languages=["ru", "kk", "en"],
    )
    return campaign.slug


@pytest.fixture
def pictures(tmp_path: Path) -> tuple[Path, Path]:
    jpeg = tmp_path / "grandmother.jpg"
    jpeg.write_bytes(photo_jpeg(21, 1200, 900))
    iphone = tmp_path / "IMG_4032.HEIC"
    iphone.write_bytes(heic(photo(1000, 750, seed=22)))
    return jpeg, iphone


def test_two_photos_on_a_phone_then_receipt_then_withdraw(
    live_server: str,
    browser: Any,
    console_errors: ConsoleErrors,
    campaign_slug: str,
    pictures: tuple[Path, Path],
    session: Session,
    settings: Settings,
) -> None:
    context = browser.new_context(**PHONE)
    page = console_errors.attach(context.new_page())
    page.goto(f"{live_server}/c/{campaign_slug}?lang=en")
    page.set_input_files("#field-photos", [str(p) for p in pictures])
    expect(page.locator(".photo-item.is-done")).to_have_count(2, timeout=30_000)
    progress = page.eval_on_selector_all(".photo-progress", "bars => bars.map(b => b.value)")
    assert progress == [100, 100]
    statuses = page.locator(".photo-item .photo-status").all_inner_texts()
    assert statuses == ["Ready", "Ready"]
    # The HEIC cannot be previewed by Chromium itself: the server's thumbnail replaces it.
    assert page.eval_on_selector_all(
        ".photo-preview img", "imgs => imgs.every(i => !i.hidden && i.naturalWidth > 0)"
    )
    page.locator(".alt-input").nth(1).fill("My grandmother's photograph held by me")
    page.fill("#field-name", "Анна")
    page.fill("#field-city", "Алматы")
    page.check("#consent-projection")
    page.click("#send-button")
    page.wait_for_url("**/r/**")
    assert "Thank you" in page.inner_text("h1")
    assert page.locator(".status-word").inner_text() == "Waiting"
    assert page.eval_on_selector_all(
        ".receipt-photos img", "imgs => imgs.length === 2 && imgs.every(i => i.naturalWidth > 0)"
    )
    session.rollback()
    submission = session.exec(select(Submission)).one()
    assert (submission.author_name, submission.origin) == ("Анна", Origin.upload)
    assert len(media_files(settings)) == 4  # two photos × (slide + thumb); staged copies gone

    page.click("text=Withdraw my photos")
    page.click("text=Yes, withdraw my photos")
    page.wait_for_selector(".status-withdrawn")
    assert page.locator(".status-word").inner_text() == "Withdrawn"
    session.rollback()
    assert session.exec(select(Submission)).one().status == SubmissionStatus.withdrawn
    assert media_files(settings) == []
    context.close()
    assert list(console_errors) == []


def test_a_refused_file_shows_its_reason_in_russian_and_others_survive(
    live_server: str,
    browser: Any,
    console_errors: ConsoleErrors,
    campaign_slug: str,
    pictures: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    letter = tmp_path / "письмо.jpg"
    letter.write_text("Это не фотография, а письмо.")
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.goto(f"{live_server}/c/{campaign_slug}?lang=ru")
    page.set_input_files("#field-photos", [str(pictures[0]), str(letter)])
    failed = page.locator(".photo-item.is-failed")
    failed.wait_for()
    assert "не фотография, которую мы можем принять" in failed.locator(".photo-status").inner_text()
    assert failed.locator(".retry-button").is_hidden()  # retrying cannot help this file
    page.wait_for_selector(".photo-item.is-done")
    page.check("#consent-projection")
    page.click("#send-button")
    assert "Некоторые фотографии не удалось отправить" in page.inner_text("#form-status")
    failed.locator(".remove-button").click()
    page.click("#send-button")
    page.wait_for_url("**/r/**")
    assert "Спасибо" in page.inner_text("h1")
    context.close()


def test_the_form_works_without_javascript(
    live_server: str,
    browser: Any,
    campaign_slug: str,
    pictures: tuple[Path, Path],
    session: Session,
) -> None:
    context = browser.new_context(java_script_enabled=False, **PHONE)
    page = context.new_page()
    page.goto(f"{live_server}/c/{campaign_slug}?lang=kk")
    assert page.locator("#field-photos").is_visible()
    page.set_input_files("#field-photos", [str(p) for p in pictures])
    page.fill("#field-alt", "Sign in Kazakh")
    page.check("#consent-projection")
    page.check("#consent-web")
    page.click("#send-button")
    page.wait_for_url("**/r/**")
    assert "Рахмет" in page.inner_text("h1")
    session.rollback()
    submission = session.exec(select(Submission)).one()
    assert submission.consent == ["projection", "web"]
    context.close()


def axe_problems(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_axe_finds_no_serious_problem_on_campaign_and_receipt_pages(
    live_server: str,
    browser: Any,
    campaign_slug: str,
    session: Session,
    settings: Settings,
) -> None:
    if not AXE.exists():
        message = "axe-core missing: run `npm install` in the repository root"
        if REQUIRE_BROWSER or os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    stored = ingest(
        session=session,
        storage=LocalStorage(settings.effective_media_dir),
        campaign=get_campaign(session=session, slug=campaign_slug),
        incoming=Incoming(
            origin=Origin.upload,
            images=[IncomingImage(process_image(photo_jpeg(30)), "A woman holding a sign")],
            consent=["projection"],
        ),
        with_receipt=True,
    )
    token = stored.receipt_token
    # axe is injected as a script; the pages' own CSP (script-src 'self') would refuse it.
    context = browser.new_context(bypass_csp=True, **PHONE)
    page = context.new_page()
    pages = [
        f"/c/{campaign_slug}?lang=ru",
        f"/c/{campaign_slug}?lang=kk",
        f"/c/{campaign_slug}?lang=he",
        f"/r/{token}?new=1&lang=ru",
        f"/r/{token}?withdraw=1&lang=en",
        f"/c/{campaign_slug}/poster",
    ]
    found = {}
    for path in pages:
        page.goto(live_server + path)
        problems = axe_problems(page)
        if problems:
            found[path] = problems
    # A refused form, with its error summary, must be accessible too: submit() skips both
    # the script and the browser's own checks, so the server answers with its problems.
    page.goto(f"{live_server}/c/{campaign_slug}?lang=en")
    with page.expect_navigation():
        page.evaluate("HTMLFormElement.prototype.submit.call(document.forms['upload-form'])")
    assert "Your photos have not been sent yet" in page.content()
    problems = axe_problems(page)
    if problems:
        found["refused form"] = problems
    context.close()
    assert found == {}, json.dumps(found, indent=1, ensure_ascii=False)
