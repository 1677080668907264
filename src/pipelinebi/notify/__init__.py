"""Deliver the playbook's fired actions (table ``actions``) to people: a webhook and an e-mail digest.

``pipelinebi notify`` reads the open actions through the semantic layer, sends each output what
it has not yet been sent (a ledger beside the database remembers every delivery, so a rerun
sends nothing twice), retries a failing endpoint, writes what still failed to a dead-letter
file, and retries it at the next run. Modules, one job each: :mod:`.ledger` (what was sent),
:mod:`.webhook` (JSON POST), :mod:`.digest` (SMTP digest), :mod:`.run` (reading actions, the
report), :mod:`.status` (what was delivered, read back for the Action list). Imports point down
into ``compiler``/``semantic``; nothing imports this but the CLI and the Action list (``status``).
"""
