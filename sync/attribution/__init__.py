"""Campaign and flow revenue grounded in the ERP (issue 22): Klaviyo's attributed conversions joined with the
ERP's durable order facts. Pure: the flow (`flows.attribution`) reads both sides and hands them here."""
