"""The shipped model folders (one per model, as transformers' ``models/<name>/``)."""
