"""MkDocs hooks for notebooks: each page as a downloadable notebook, and the labs."""
