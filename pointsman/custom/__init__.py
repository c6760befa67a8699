"""Custom routers trained on a user's own prompts: collect answers, judge them, train, evaluate, deploy.

The pieces, in the order a user meets them: ``store`` (one SQLite file per router under
``<data_dir>/custom/NAME``), ``collect`` (send every prompt to every candidate, resumably), ``judge`` (grade each
answer 1..10), ``importer`` (already-labelled data instead), ``train`` (fine-tune the shipped scorer and report
with the evaluation harness), ``registry`` (deploy so ``router@NAME|...`` resolves) and ``calibrate`` (the cost
weight that caps the strongest model's share of calls, without labels). ``pointsman custom --help`` drives them.
"""

from __future__ import annotations

__all__: list[str] = []
