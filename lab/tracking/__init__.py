"""Tracking: where runs go. The MLflow store and its checks (``tracker``), the worker process that writes a run
while it trains (``worker``: ``RemoteTracker`` on the training side), every run's pyfunc model (``pyfunc``), the
model registry (``models``), listing runs and finding stale ones (``runs``), the experiment checks made before a run
exists (``preflight``) and the plots logged with a run. It imports ``lab.training`` (to rebuild a logged model) and
``lab.core``, never the commands.
"""
