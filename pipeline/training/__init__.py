"""Ray Train training of the generator families, their training data and the model registry."""
