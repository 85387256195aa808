"""The report side: run directory → analysis → ReportModel → charts and templates → HTML, PDF or Markdown."""
