"""Test support code shared by the test suites (no tests live here).

``tests.support.broker`` starts throw-away RabbitMQ nodes for fault-injection
tests. It never touches the shared broker on 127.0.0.1:5672.
"""
