"""Onboarding a tenant: what a sample of its records says about a mapping (`check`) and the mapping a sample
suggests (`suggest`). Pure: records in, typed reports and TOML text out; the reading is `workers.mapping_cli`'s."""
