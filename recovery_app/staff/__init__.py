"""Staff management: the staff list and roles, invitations onto the staff, and the user search."""
