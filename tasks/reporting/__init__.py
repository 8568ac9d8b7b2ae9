"""Review reports: load the rows, compute the figures, render HTML/DOCX/Markdown, store them."""
