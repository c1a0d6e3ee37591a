"""The study report: figures (matplotlib, PNG and PDF) and index.html, built from the files that
dlb_aggregate writes and from the run directories."""
