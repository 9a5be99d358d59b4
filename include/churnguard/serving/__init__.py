"""The prediction service: ``churnguard serve`` answers churn predictions and explanations online from the
registry's champion (and challenger), follows its aliases without downtime, and counts what it does.

Modules: ``app`` (the factory and the runner: the edge that loads configs), ``routes`` (the HTTP routes),
``schema`` (request models generated from the dataset config), ``routing`` (who answers a customer),
``served`` (a loaded version and its canary check), ``refresh`` (the hot swap), ``explain`` (TreeSHAP by
dataset column), ``auth`` (API keys), ``metrics`` (Prometheus). See docs/serving.md.
"""
