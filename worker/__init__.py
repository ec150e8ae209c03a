"""The generation side: arq workers that call the model and write its answer into Redis streams."""
