"""`bcsync console`: the operations console for the business teams (operations, ecommerce, finance).

A small server-rendered starlette application (Jinja templates, plain HTML forms, no build step) over the same
functions the commands use: the status collection (`workers.status`), the exception register, the dead-letter
queues and `bcsync dlq`'s requeue, `bcsync audit`'s order report and the playbook. Sign-in with roles, CSRF on
every change, every change in an audit log in Redis (`state.console_audit`).
"""
