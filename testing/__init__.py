"""Test instruments that stand apart from the product: they import nothing of it (an import contract)."""
