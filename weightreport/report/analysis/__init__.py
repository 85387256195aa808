"""Analysis shared by the report's sections: bounded reading (``sampling``, ``run_tables``),
DataFrame helpers (``frames``), the health findings (``findings`` and its checks,
``thresholds``) and the pull-request summary (``summary``). Each section's own builder
lives in its module under ``report/sections/``; ``report.model.analyze`` runs them all."""
