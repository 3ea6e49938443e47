"""Image quality: the measures and the verdicts, on generated photos."""

import pytest

from recovery_app.prechecks import imaging, quality

from . import images


def _judge(app, image):
    data = images.jpeg(image)
    measured = quality.measure(imaging.gray(imaging.decode(data, "image/jpeg")))
    return measured, quality.judge(measured, app.config)


@pytest.fixture(scope="module")
def sharp_card():
    return images.photo_of(images.card(7), seed=7)


def test_sharp_photo_passes(app, sharp_card):
    measured, (verdict, reasons) = _judge(app, sharp_card)
    assert (verdict, reasons) == ("pass", [])
    assert measured.sharpness > app.config["RECOVERY_PRECHECK_SHARPNESS_REVIEW"]
    assert (measured.width, measured.height) == (1600, 1200)


def test_gaussian_blurred_photo_fails(app, sharp_card):
    measured, (verdict, reasons) = _judge(app, images.blurred(sharp_card, 3))
    assert verdict == "fail" and "blurred" in reasons
    assert measured.sharpness < app.config["RECOVERY_PRECHECK_SHARPNESS_FAIL"]


def test_slightly_soft_photo_asks_to_look_closely(app, sharp_card):
    _, (verdict, reasons) = _judge(app, images.blurred(sharp_card, 2.2))
    assert (verdict, reasons) == ("review", ["soft"])


def test_the_blur_of_a_hand_held_phone_photo_passes(app, sharp_card):
    _, (verdict, reasons) = _judge(app, images.blurred(sharp_card, 1.5))
    assert (verdict, reasons) == ("pass", [])


def test_glare_blob_fails(app, sharp_card):
    measured, (verdict, reasons) = _judge(app, images.with_glare(sharp_card, 0.12))
    assert verdict == "fail" and reasons == ["glare"]
    assert 0.10 < measured.glare < 0.13


def test_white_scanner_margin_is_not_glare(app):
    # A flatbed scan: pure white paper around the card, running to the border.
    from PIL import Image

    scan = Image.new("RGB", (1700, 1300), (255, 255, 255))
    scan.paste(images.with_noise(images.card(3), 3), (250, 270))
    measured, (verdict, _) = _judge(app, scan)
    assert measured.glare == 0.0
    assert verdict == "pass"


def test_dark_photo_fails(app, sharp_card):
    _, (verdict, reasons) = _judge(app, images.darkened(sharp_card))
    assert verdict == "fail" and "too_dark" in reasons


def test_small_image_asks_to_look_closely(app, sharp_card):
    _, (verdict, reasons) = _judge(app, sharp_card.resize((640, 480)))
    assert verdict == "review" and "small" in reasons


def test_undecodable_image_raises(app):
    with pytest.raises(ValueError):
        imaging.decode(b"\xff\xd8\xff\xe0 not really a jpeg", "image/jpeg")
