"""Shared by every decoder family: protocol names, initiator rules, IP and time text."""
