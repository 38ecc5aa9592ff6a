"""The pydsbase study server: one study's tables, a strict call grammar, our R server functions."""
