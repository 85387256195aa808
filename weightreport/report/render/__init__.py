"""Rendering a ReportModel: ``html.render_html`` and ``pdf.render_pdf`` share one Jinja env."""
