"""The amqp-client code generator.

Reads the AMQP 0-9-1 XML specification (and overlays in the same dialect)
with lxml, builds a typed model, and renders ``generated/`` through jinja2
templates. Nothing here is imported at run time by ``amqp_client``.
"""
