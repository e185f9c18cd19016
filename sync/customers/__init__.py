"""Customers -> Klaviyo profiles and marketing consent: records, validation, transforms, consent rules."""
