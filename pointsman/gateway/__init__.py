"""The OpenAI-compatible gateway. ``pointsman.gateway.app.create_app`` builds it; ``pointsman.gateway.billing``
is the seam to accounts and credit; ``pointsman.gateway.testing`` runs it on loopback for tests and demos.

Nothing is imported here, so importing a submodule (the ledger imports ``billing``) never pulls in the app."""
