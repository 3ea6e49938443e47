"""Automatic pre-checks on every case: image quality, passport MRZ, reused
documents and faces. They advise the reviewer and never decide a case; the
reviewer's case file (review.casefile.CaseFile) carries their panel.
"""
