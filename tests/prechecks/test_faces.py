"""Faces: OpenCV's packaged Haar cascade on a drawn face, and on nothing."""

from recovery_app.prechecks import faces, imaging

from . import images


def _count(image):
    return faces.count_faces(imaging.gray(imaging.decode(images.jpeg(image), "image/jpeg")))


def test_generated_selfie_has_a_face(app):
    assert _count(images.selfie(4)) >= 1


def test_face_in_the_document_photo_area_is_found(app):
    assert _count(images.photo_of(images.card(4), seed=4)) >= 1


def test_image_without_a_face_finds_none(app):
    assert _count(images.blank()) == 0
    assert _count(images.photo_of(images.blank((1200, 760), (220, 225, 230)), seed=2)) == 0
