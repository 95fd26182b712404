"""Built-in plugins, one small module each; the pipeline treats them like any other."""
