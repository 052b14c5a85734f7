"""Reports: the risk overview and the statement of applicability, as data, HTML, Markdown and more."""
