"""Doors: who may see and change what. Roles and the route table (policy), people who sign
in (users), wall screens' tokens (screens), the audit log (audit), and their place in the
web server (web). docs/security.md."""
