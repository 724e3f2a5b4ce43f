"""Provisioners: who may ask the authority for a certificate, and how they prove it."""
