"""Seller account users, invitations, password resets, e-mail change and sessions."""
